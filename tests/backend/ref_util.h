// Helpers for the backend tests: seeded random tensors and comparisons of a backend
// result against a naive double-precision reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "vidi/tensor.h"

namespace vidi::test {

// Uniform values in [lo, hi), generated in f32 and rounded to `dtype`.
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

// The exact values of a float tensor, widened to double.
inline std::vector<double> values(const Tensor& t) {
    std::vector<float> f = t.to_f32_vector();
    return std::vector<double>(f.begin(), f.end());
}

// ‖got − ref‖ / ‖ref‖ (‖got − ref‖ when ref is all zeros).
inline double rel_err(const Tensor& got, const std::vector<double>& ref) {
    std::vector<float> g = got.to_f32_vector();
    if (g.size() != ref.size()) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size(); ++i) {
        num += (g[i] - ref[i]) * (g[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    if (std::isnan(num)) return INFINITY;
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// The definition: query i (absolute position q_pos0+i) sees key j iff
// (!causal || j <= pos) && (window == 0 || pos - j <= window); a row that sees nothing is 0.
inline std::vector<double> attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
    const int64_t Tq = q.dim(0), H = q.dim(1), hd = q.dim(2), Tk = k.dim(0), KV = k.dim(1);
    auto qv = values(q), kv = values(k), vv = values(v);
    std::vector<double> out(static_cast<size_t>(Tq * H * hd), 0.0);
    for (int64_t i = 0; i < Tq; ++i)
        for (int64_t h = 0; h < H; ++h) {
            const int64_t g = h / (H / KV), pos = p.q_pos0 + i;
            std::vector<double> s(static_cast<size_t>(Tk), -std::numeric_limits<double>::infinity());
            double mx = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < Tk; ++j) {
                double d = 0;
                for (int64_t e = 0; e < hd; ++e) d += qv[(i * H + h) * hd + e] * kv[(j * KV + g) * hd + e];
                d *= p.scale;
                if (p.softcap > 0) d = p.softcap * std::tanh(d / p.softcap);
                const bool visible = (!p.causal || j <= pos) && (p.window == 0 || pos - j <= p.window);
                if (visible) {
                    s[j] = d;
                    mx = std::max(mx, d);
                }
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

inline std::unique_ptr<Backend> test_backend() { return make_cpu_backend(2); }

// GELU, exact and in its tanh form.
inline double gelu_erf_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
inline double gelu_tanh_ref(double x) {
    return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

}  // namespace vidi::test
