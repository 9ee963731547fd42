// What backend results are compared with, for every backend's tests (tests/backend, the
// parameterised suite, and tests/cuda, the CUDA backend's own): random inputs and the ops'
// definitions in double precision. Header-only: test_cuda links no CPU backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "vidi/tensor.h"

namespace vidi::test {

// A result held in bf16 against a double reference: the output rounding alone gives ~2e-3.
constexpr double kBf16Tol = 1e-2;
// f16 has 3 more mantissa bits: its rounding is 8 times finer.
constexpr double kF16Tol = 2e-3;

// One generator per test binary, seeded the same every run (failures reproduce).
inline std::mt19937& rng() {
    static std::mt19937 gen(20261203u);
    return gen;
}

// Host f32 values in [lo, hi) rounded to bf16 and then f16: values both 16-bit types
// represent exactly, so every backend, in either activation dtype, holds the values the
// reference uses.
inline Tensor random_host(const Shape& shape, float lo = -1.0f, float hi = 1.0f) {
    Tensor t = Tensor::empty(shape, DType::f32);
    std::uniform_real_distribution<float> dist(lo, hi);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = f16_to_f32(f32_to_f16(bf16_to_f32(f32_to_bf16(dist(rng())))));
    return t;
}

// Uniform values in [lo, hi) from their own seed, in f32 and rounded to `dtype`.
inline Tensor random_tensor(const Shape& shape, DType dtype, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    Tensor f = Tensor::empty(shape, DType::f32);
    for (int64_t i = 0; i < f.numel(); ++i) f.data<float>()[i] = dist(gen);
    if (dtype == DType::f32) return f;
    Tensor t = Tensor::empty(shape, dtype);
    convert_from_f32(f.data<float>(), dtype, t.raw(), static_cast<size_t>(f.numel()));
    return t;
}

// The exact values of a host float tensor, widened to double.
inline std::vector<double> values(const Tensor& host) {
    const std::vector<float> f = host.to_f32_vector();
    return std::vector<double>(f.begin(), f.end());
}

// ‖got − ref‖ / ‖ref‖ (‖got − ref‖ when ref is all zeros) for a host tensor; INFINITY on a
// size mismatch or a NaN.
inline double rel_err(const Tensor& host, const std::vector<double>& ref) {
    const std::vector<float> g = host.to_f32_vector();
    if (g.size() != ref.size()) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        num += (g[i] - ref[i]) * (g[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    if (std::isnan(num)) return INFINITY;
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// GELU exact and in its tanh form; SiLU.
inline double gelu_erf_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
inline double gelu_tanh_ref(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
inline double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }
inline double glu_ref(double gate, double up, Glu kind) {
    return (kind == Glu::silu ? silu_ref(gate) : gelu_tanh_ref(gate)) * up;
}

// y[M, N] = x[M, K] · w[N, K]ᵀ + b[N] over values (b empty: no bias).
inline std::vector<double> linear_ref(const std::vector<double>& xv, const std::vector<double>& wv,
                                      const std::vector<double>& b, int64_t K) {
    const int64_t N = static_cast<int64_t>(wv.size()) / K, M = static_cast<int64_t>(xv.size()) / K;
    const std::vector<double> bv = b.empty() ? std::vector<double>(static_cast<size_t>(N), 0.0) : b;
    std::vector<double> y(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            double s = bv[n];
            for (int64_t k = 0; k < K; ++k) s += xv[m * K + k] * wv[n * K + k];
            y[m * N + n] = s;
        }
    return y;
}

// The same from host float tensors (x may have leading dims).
inline std::vector<double> linear_ref(const Tensor& x, const Tensor& w, const Tensor& b = {}) {
    return linear_ref(values(x), values(w), b.defined() ? values(b) : std::vector<double>(), w.dim(1));
}

// rms_norm of rows of x[rows, D] with weight w[D] (unused for NormWeight::none).
inline std::vector<double> rms_norm_ref(const std::vector<double>& x, const std::vector<double>& w, int64_t D,
                                        double eps, NormWeight mode) {
    std::vector<double> y(x.size());
    for (size_t r = 0; r < x.size() / D; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < D; ++i) ss += x[r * D + i] * x[r * D + i];
        const double inv = 1.0 / std::sqrt(ss / D + eps);
        for (int64_t i = 0; i < D; ++i) {
            const double g = mode == NormWeight::none ? 1.0 : mode == NormWeight::plain ? w[i] : 1.0 + w[i];
            y[r * D + i] = x[r * D + i] * inv * g;
        }
    }
    return y;
}

// layer_norm of rows of x[rows, D] (two-pass mean and variance).
inline std::vector<double> layer_norm_ref(const std::vector<double>& x, const std::vector<double>& w,
                                          const std::vector<double>& b, int64_t D, double eps) {
    std::vector<double> y(x.size());
    for (size_t r = 0; r < x.size() / D; ++r) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < D; ++i) mean += x[r * D + i] / D;
        for (int64_t i = 0; i < D; ++i) var += (x[r * D + i] - mean) * (x[r * D + i] - mean) / D;
        for (int64_t i = 0; i < D; ++i) y[r * D + i] = (x[r * D + i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
    }
    return y;
}

// Rotate-half RoPE of x[T, H, hd] at positions pos0.. . Hugging Face forms the angle in f32
// (inv_freq and pos·inv_freq); the rest is double here.
inline std::vector<double> rope_ref(const std::vector<double>& x, int64_t T, int64_t H, int64_t hd, int64_t pos0,
                                    double theta) {
    std::vector<double> y(x.size());
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < hd / 2; ++i) {
            const float inv = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / hd);
            const double a = static_cast<float>(static_cast<float>(pos0 + t) * inv);
            for (int64_t h = 0; h < H; ++h) {
                const int64_t b = (t * H + h) * hd;
                y[b + i] = x[b + i] * std::cos(a) - x[b + i + hd / 2] * std::sin(a);
                y[b + i + hd / 2] = x[b + i + hd / 2] * std::cos(a) + x[b + i] * std::sin(a);
            }
        }
    return y;
}

// The definition: query i (absolute position q_pos0+i) sees key j iff
// (!causal || j <= pos) && (window == 0 || pos - j <= window); out = softmax_j(cap(scale·q·k))·v
// over the visible keys, a row that sees nothing is 0. q[Tq, H, hd], k/v[Tk, KV, hd] on the host.
inline std::vector<double> attention_ref(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const AttentionParams& p) {
    const int64_t Tq = q.dim(0), H = q.dim(1), hd = q.dim(2), Tk = k.dim(0), KV = k.dim(1);
    const std::vector<double> qv = values(q), kv = values(k), vv = values(v);
    std::vector<double> out(static_cast<size_t>(Tq * H * hd), 0.0);
    std::vector<double> s(static_cast<size_t>(Tk));
    for (int64_t i = 0; i < Tq; ++i)
        for (int64_t h = 0; h < H; ++h) {
            const int64_t g = h / (H / KV), pos = p.q_pos0 + i;
            double mx = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < Tk; ++j) {
                s[j] = -std::numeric_limits<double>::infinity();
                if ((p.causal && j > pos) || (p.window > 0 && pos - j > p.window)) continue;
                double d = 0;
                for (int64_t e = 0; e < hd; ++e) d += qv[(i * H + h) * hd + e] * kv[(j * KV + g) * hd + e];
                d *= p.scale;
                if (p.softcap > 0) d = p.softcap * std::tanh(d / p.softcap);
                s[j] = d;
                mx = std::max(mx, d);
            }
            if (std::isinf(mx)) continue;
            double sum = 0;
            for (int64_t j = 0; j < Tk; ++j) sum += std::isinf(s[j]) ? 0.0 : std::exp(s[j] - mx);
            for (int64_t j = 0; j < Tk; ++j) {
                if (std::isinf(s[j])) continue;
                const double w = std::exp(s[j] - mx) / sum;
                for (int64_t e = 0; e < hd; ++e) out[(i * H + h) * hd + e] += w * vv[(j * KV + g) * hd + e];
            }
        }
    return out;
}

}  // namespace vidi::test
