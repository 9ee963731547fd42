// The CUDA backend's own tests (its memory, its step graphs, which paths its kernels take):
// one backend per process, poisoning every new tensor with NaN so unwritten outputs fail. Its
// ops are checked with every other backend's by the parameterised suite (tests/backend), on
// the same references (tests/backend/reference.h).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/reference.h"

namespace vidi::cuda::test {

using vidi::test::kBf16Tol;
using vidi::test::random_host;
using vidi::test::rng;
using vidi::test::values;

CudaBackend& backend();

// Uploads a host tensor (to bf16) and returns it.
Tensor dev(const Tensor& host);
// Copies `got` (device) to the host and compares it with `ref`: every element must be
// finite and ‖got − ref‖ / ‖ref‖ ≤ tol. Returns the relative error.
double expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what);
// Exact equality (for gathers and copies).
void expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what);

}  // namespace vidi::cuda::test
