// The sinusoid under Vidi's learnable positional encodings (SPEC.md §3.6), on the host in
// double: the CPU backend's Backend::sinusoid and the reference its GPU version is held to.
#pragma once

#include <cstdint>
#include <vector>

#include "vidi/tensor.h"

namespace vidi {

// f_i = exp(-2i·ln(10000)/dim), i < dim/2, in double (a GPU takes these as they are, so that
// only its sin/cos can differ from the host's).
std::vector<double> sinusoid_frequencies(int64_t dim);

// pe[2i] = sin(q·f_i), pe[2i+1] = cos(q·f_i): host f32 [positions.size(), dim], dim even.
// Computed in double: q reaches N-1 = 9999, where f32 arguments would lose ~1e-3 rad. A
// documented choice (docs/conformance.md ("Numerics")): the official pos.py computes the positions
// and the sinusoid in float32; the golden files, which the tests hold us to, in float64
// (SPEC §9: 5e-5 relative on tiny-a's audio tokens, inside every tolerance).
Tensor sinusoid_table(const std::vector<double>& positions, int64_t dim);

}  // namespace vidi
