#include "model/common/positional.h"

#include <algorithm>
#include <vector>

namespace vidi::model {

namespace {
// Positions through the f32 MLP at a time: bounds its f32 working set (3 tensors of this many
// rows: 88 MB at D = 3584) when an hour of audio asks for 36 000 of them.
constexpr int64_t kRowsPerPass = 2048;
}  // namespace

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
    const int64_t n = static_cast<int64_t>(q.size());
    Tensor out = be_.act({n, dim_});
    for (int64_t r0 = 0; r0 < n; r0 += kRowsPerPass) {
        const int64_t r1 = std::min(n, r0 + kRowsPerPass);
        // The sinusoid on the backend (a GPU's, not the host's: see Backend::sinusoid), then
        // the MLP in f32 (official pos.py: Linear(dtype=float32), GELU, Linear), then
        // `.to(x.dtype)`: rounded once to the activation dtype.
        const Tensor pe = be_.sinusoid(std::vector<double>(q.begin() + r0, q.begin() + r1), dim_);
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
