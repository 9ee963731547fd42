#include "model/common/positional.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace vidi::model {

namespace {
// Positions through the f32 MLP at a time: bounds its f32 working set (3 tensors of this many
// rows: 88 MB at D = 3584) when an hour of audio asks for 36 000 of them.
constexpr int64_t kRowsPerPass = 2048;
}  // namespace

Tensor sinusoid_table(const std::vector<double>& positions, int64_t dim) {
    VIDI_CHECK(dim > 0 && dim % 2 == 0, "positional encoding: dimension ", dim, " must be even");
    const int64_t n = static_cast<int64_t>(positions.size()), half = dim / 2;
    std::vector<double> freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
        freq[static_cast<size_t>(i)] =
            std::exp(-static_cast<double>(2 * i) * std::log(10000.0) / static_cast<double>(dim));
    Tensor t = Tensor::empty({n, dim}, DType::f32);
    float* p = t.data<float>();
    // An hour of audio is 36000 rows of sin/cos in double: rows in parallel.
#pragma omp parallel for schedule(static) if (n > 64)
    for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < half; ++i) {
            const double a = positions[static_cast<size_t>(r)] * freq[static_cast<size_t>(i)];
            p[r * dim + 2 * i] = static_cast<float>(std::sin(a));
            p[r * dim + 2 * i + 1] = static_cast<float>(std::cos(a));
        }
    return t;
}

PositionalMlp::PositionalMlp(const WeightLoader& w, int64_t dim, Backend& backend)
    : be_(backend), dim_(dim), where_(w.prefix()) {
    w0_ = w.f32_weight("mlp.0.weight", {dim, dim});
    b0_ = w.f32_weight("mlp.0.bias", {dim});
    w2_ = w.f32_weight("mlp.2.weight", {dim, dim});
    b2_ = w.f32_weight("mlp.2.bias", {dim});
}

Tensor PositionalMlp::encode(int64_t N, int64_t l, const std::vector<int64_t>& indices) const {
    VIDI_CHECK(l > 1, where_, ": positions need at least two steps to spread over, got ", l,
               " (a video needs at least two frames and about 0.2 s of audio)");
    std::vector<double> q;
    q.reserve(indices.size());
    for (int64_t j : indices) {
        VIDI_CHECK(j >= 0 && j < l, where_, ": position index ", j, " outside 0..", l - 1);
        q.push_back(static_cast<double>(j) / static_cast<double>(l - 1) * static_cast<double>(N - 1));
    }
    const Section s = be_.section("positional mlp");
    const Tensor table = sinusoid_table(q, dim_);
    const int64_t n = table.dim(0);
    Tensor out = be_.act({n, dim_});
    for (int64_t r0 = 0; r0 < n; r0 += kRowsPerPass) {
        const int64_t r1 = std::min(n, r0 + kRowsPerPass);
        // The MLP in f32 (official pos.py: Linear(dtype=float32), GELU, Linear), then
        // `.to(x.dtype)`: rounded once to the activation dtype.
        Tensor pe = be_.empty({r1 - r0, dim_}, DType::f32);
        be_.copy_(pe, table.rows(r0, r1));
        Tensor h = be_.linear(pe, w0_, b0_);
        be_.gelu_(h, Gelu::erf);
        h = be_.linear(h, w2_, b2_);
        Tensor rows = out.rows(r0, r1);
        be_.copy_(rows, h);
    }
    // The weightless RMSNorm of the rounded values (computed in f32, as the official rms_norm).
    return be_.rms_norm(out, Tensor(), 1e-5f, NormWeight::none);
}

}  // namespace vidi::model
