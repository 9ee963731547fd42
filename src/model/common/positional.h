// Vidi's learnable positional encodings (SPEC.md §3.6): a sinusoid of positions spread
// evenly over [0, N-1] (core/sinusoid.h, in double on every backend), then Linear -> GELU(erf)
// -> Linear, then a weightless RMSNorm.
// The MLP runs in f32 on every backend, as the official pos.py (SPEC §9); its output is
// rounded to the activation dtype before the norm, as the official `.to(x.dtype)`.
#pragma once

#include <vector>

#include "backend/backend.h"
#include "model/common/weights.h"

namespace vidi::model {

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
