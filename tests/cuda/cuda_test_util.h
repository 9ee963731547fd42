// Shared helpers of the CUDA backend tests: one backend per process (poisoning every new
// tensor with NaN so unwritten outputs fail), bf16-representable random inputs, and the
// comparison of a device result with a double-precision host reference.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"

namespace vidi::cuda::test {

CudaBackend& backend();
std::mt19937& rng();  // seeded from std::random_device; the seed is printed once

// Host f32 tensor of random values in [lo, hi) rounded to bf16, so the device copy holds
// exactly the values the reference uses.
Tensor random_host(const Shape& shape, float lo = -1.0f, float hi = 1.0f);
std::vector<double> as_doubles(const Tensor& host);
// Uploads a host tensor (to bf16) and returns it.
Tensor dev(const Tensor& host);

// Copies `got` (device) to the host and compares it with `ref`: every element must be
// finite and ‖got − ref‖ / ‖ref‖ ≤ tol. Returns the relative error.
double expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what);
// Exact equality (for gathers and copies).
void expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what);

// y[M, N] = x[M, K] · w[N, K]ᵀ (+ b[N]) in double, from host f32 tensors (b may be null).
std::vector<double> linear_reference(const Tensor& x, const Tensor& w, const Tensor* b, int64_t M, int64_t N,
                                     int64_t K);

inline double gelu_tanh(double x) {
    return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
inline double gelu_erf(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

// bf16 storage tolerance: output rounding alone gives ~2e-3.
constexpr double kBf16Tol = 1e-2;

}  // namespace vidi::cuda::test
