// Vidi's learnable positional encodings (SPEC.md §3.6): a sinusoid of positions spread
// evenly over [0, N-1], then Linear -> GELU(erf) -> Linear, then a weightless RMSNorm.
// The MLP runs in f32 on every backend, as the official pos.py (SPEC §9); its output is
// rounded to the activation dtype before the norm, as the official `.to(x.dtype)`.
#pragma once

#include <vector>

#include "backend/backend.h"
#include "model/common/weights.h"

namespace vidi::model {

// pe[2i] = sin(q·f_i), pe[2i+1] = cos(q·f_i), f_i = exp(-2i·ln(10000)/dim); host f32 [n, dim].
// Computed in double: q reaches N-1 = 9999, where f32 arguments would lose ~1e-3 rad. A
// documented choice (docs/conformance.md ("Numerics")): the official pos.py computes the positions
// and the sinusoid in float32; the golden files, which the tests hold us to, in float64
// (SPEC §9: 5e-5 relative on tiny-a's audio tokens, inside every tolerance).
Tensor sinusoid_table(const std::vector<double>& positions, int64_t dim);

class PositionalMlp {
public:
    // `w` points at the module, e.g. prefix "model.mm_rand_pos_t.".
    PositionalMlp(const WeightLoader& w, int64_t dim, Backend& backend);

    // Rows j ∈ indices of pos(N, l): position j/(l-1)·(N-1), l > 1. -> [indices.size(), dim].
    Tensor encode(int64_t N, int64_t l, const std::vector<int64_t>& indices) const;

private:
    Backend& be_;
    int64_t dim_;
    std::string where_;
    Tensor w0_, b0_, w2_, b2_;
};

}  // namespace vidi::model
