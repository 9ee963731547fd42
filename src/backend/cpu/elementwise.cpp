// Element-wise and row-wise kernels (OpenMP). Row reductions (norms) accumulate in
// double so the result does not depend on the row length or the thread count.
#include <cmath>

#include "backend/cpu/cpu_backend.h"

namespace vidi::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;

inline float gelu_tanh(float x) { return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x))); }
inline float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2)); }

// The per-row weight of a norm as f32 (or undefined for NormWeight::none).
Tensor norm_weight(const Tensor& w, int64_t D, const char* op, bool required) {
    if (!required) return {};
    require_float_host(w, op, "weight");
    VIDI_CHECK(w.numel() == D, op, ": weight ", w.describe(), " does not match feature size ", D);
    return as_f32(w);
}

}  // namespace

void CpuBackend::add_(Tensor& x, const Tensor& y) {
    require_f32_host(x, "add_", "x");
    require_f32_host(y, "add_", "y");
    VIDI_CHECK(x.shape() == y.shape(), "add_: shapes differ: ", x.describe(), " and ", y.describe());
    float* xp = x.data<float>();
    const float* yp = y.data<float>();
    const int64_t n = x.numel();
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t i = 0; i < n; ++i) xp[i] += yp[i];
}

void CpuBackend::add_broadcast_(Tensor& x, const Tensor& y) {
    require_f32_host(x, "add_broadcast_", "x");
    require_f32_host(y, "add_broadcast_", "y");
    VIDI_CHECK(x.rank() >= 1 && x.rank() <= 4 && y.rank() <= x.rank(), "add_broadcast_: cannot broadcast ",
               y.describe(), " onto ", x.describe());
    // Right-align both shapes to rank 4.
    int64_t xs[4] = {1, 1, 1, 1}, ys[4] = {1, 1, 1, 1};
    for (int i = 0; i < x.rank(); ++i) xs[4 - x.rank() + i] = x.shape()[i];
    for (int i = 0; i < y.rank(); ++i) ys[4 - y.rank() + i] = y.shape()[i];
    VIDI_CHECK(ys[3] == xs[3], "add_broadcast_: last dimensions differ: ", y.describe(), " onto ", x.describe());
    for (int d = 0; d < 3; ++d)
        VIDI_CHECK(ys[d] == xs[d] || ys[d] == 1, "add_broadcast_: cannot broadcast ", y.describe(), " onto ",
                   x.describe());
    float* xp = x.data<float>();
    const float* yp = y.data<float>();
    const int64_t D = xs[3];
    const int64_t outer = xs[0] * xs[1] * xs[2];
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t r = 0; r < outer; ++r) {
        const int64_t a = r / (xs[1] * xs[2]), b = (r / xs[2]) % xs[1], c = r % xs[2];
        const int64_t yr = ((ys[0] == 1 ? 0 : a) * ys[1] + (ys[1] == 1 ? 0 : b)) * ys[2] + (ys[2] == 1 ? 0 : c);
        float* xr = xp + r * D;
        const float* yrow = yp + yr * D;
        for (int64_t i = 0; i < D; ++i) xr[i] += yrow[i];
    }
}

void CpuBackend::scale_(Tensor& x, float s) {
    require_f32_host(x, "scale_", "x");
    float* p = x.data<float>();
    const int64_t n = x.numel();
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] *= s;
}

void CpuBackend::gelu_(Tensor& x, Gelu kind) {
    require_f32_host(x, "gelu_", "x");
    float* p = x.data<float>();
    const int64_t n = x.numel();
    if (kind == Gelu::tanh) {
#pragma omp parallel for num_threads(threads_) schedule(static)
        for (int64_t i = 0; i < n; ++i) p[i] = gelu_tanh(p[i]);
    } else {
#pragma omp parallel for num_threads(threads_) schedule(static)
        for (int64_t i = 0; i < n; ++i) p[i] = gelu_erf(p[i]);
    }
}

void CpuBackend::softcap_(Tensor& x, float cap) {
    require_f32_host(x, "softcap_", "x");
    VIDI_CHECK(cap > 0, "softcap_: cap must be positive, got ", cap);
    float* p = x.data<float>();
    const int64_t n = x.numel();
    const float inv = 1.0f / cap;
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = cap * std::tanh(p[i] * inv);
}

Tensor CpuBackend::glu(const Tensor& gate, const Tensor& up, Glu kind) {
    require_f32_host(gate, "glu", "gate");
    require_f32_host(up, "glu", "up");
    VIDI_CHECK(gate.shape() == up.shape(), "glu: shapes differ: ", gate.describe(), " and ", up.describe());
    Tensor y = Tensor::empty(gate.shape(), DType::f32);
    const float* g = gate.data<float>();
    const float* u = up.data<float>();
    float* o = y.data<float>();
    const int64_t n = gate.numel();
    if (kind == Glu::silu) {
#pragma omp parallel for num_threads(threads_) schedule(static)
        for (int64_t i = 0; i < n; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    } else {
#pragma omp parallel for num_threads(threads_) schedule(static)
        for (int64_t i = 0; i < n; ++i) o[i] = gelu_tanh(g[i]) * u[i];
    }
    return y;
}

Tensor CpuBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, NormWeight mode) {
    require_f32_host(x, "rms_norm", "x");
    VIDI_CHECK(x.rank() >= 1, "rms_norm: scalar input");
    const int64_t D = x.dim(-1), rows = D ? x.numel() / D : 0;
    Tensor wf = norm_weight(w, D, "rms_norm", mode != NormWeight::none);
    const float* wp = wf.defined() ? wf.data<float>() : nullptr;
    Tensor y = Tensor::empty(x.shape(), DType::f32);
    const float* xp = x.data<float>();
    float* yp = y.data<float>();
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = xp + r * D;
        float* yr = yp + r * D;
        double ss = 0;
        for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(xr[i]) * xr[i];
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
        for (int64_t i = 0; i < D; ++i) {
            const double n = xr[i] * inv;
            double g = 1.0;
            if (mode == NormWeight::plain) g = wp[i];
            if (mode == NormWeight::one_plus) g = 1.0 + wp[i];
            yr[i] = static_cast<float>(n * g);
        }
    }
    return y;
}

Tensor CpuBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
    require_f32_host(x, "layer_norm", "x");
    VIDI_CHECK(x.rank() >= 1, "layer_norm: scalar input");
    const int64_t D = x.dim(-1), rows = D ? x.numel() / D : 0;
    Tensor wf = norm_weight(w, D, "layer_norm", true);
    Tensor bf = norm_weight(b, D, "layer_norm", true);
    const float* wp = wf.data<float>();
    const float* bp = bf.data<float>();
    Tensor y = Tensor::empty(x.shape(), DType::f32);
    const float* xp = x.data<float>();
    float* yp = y.data<float>();
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = xp + r * D;
        float* yr = yp + r * D;
        double mean = 0;
        for (int64_t i = 0; i < D; ++i) mean += xr[i];
        mean /= static_cast<double>(D);
        double var = 0;
        for (int64_t i = 0; i < D; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        const double inv = 1.0 / std::sqrt(var / static_cast<double>(D) + eps);
        for (int64_t i = 0; i < D; ++i) yr[i] = static_cast<float>((xr[i] - mean) * inv * wp[i] + bp[i]);
    }
    return y;
}

}  // namespace vidi::cpu
