// Shared helpers of the CUDA backend tests: one backend per activation dtype (bf16, f16) per
// process (poisoning every new tensor with NaN so unwritten outputs fail), random inputs that
// both 16-bit types represent exactly, and the comparison of a device result with a
// double-precision host reference. Suites parameterised over the dtype derive their fixture
// from CudaDtypes and instantiate it with VIDI_CUDA_DTYPES.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"

namespace vidi {
inline void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }
}  // namespace vidi

namespace vidi::cuda::test {

// The backend of the activation dtype under test (bf16 unless a CudaDtypes test set another).
CudaBackend& backend();
DType act();
void set_act(DType act);  // bf16 or f16
std::mt19937& rng();  // seeded from std::random_device; the seed is printed once

// Host f32 tensor of random values in [lo, hi) rounded to bf16 and then f16: values both
// 16-bit types hold exactly, so the device copy holds exactly what the reference uses.
Tensor random_host(const Shape& shape, float lo = -1.0f, float hi = 1.0f);
std::vector<double> as_doubles(const Tensor& host);
// Uploads a host tensor (to the activation dtype) and returns it.
Tensor dev(const Tensor& host);

// Copies `got` (device) to the host and compares it with `ref`: every element must be
// finite and ‖got − ref‖ / ‖ref‖ ≤ tol. Returns the relative error.
double expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what);
// Exact equality (for gathers and copies).
void expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what);

// y[M, N] = x[M, K] · w[N, K]ᵀ (+ b[N]) in double, from host f32 tensors (b may be null).
std::vector<double> linear_reference(const Tensor& x, const Tensor& w, const Tensor* b, int64_t M, int64_t N,
                                     int64_t K);

// out[i, h, :] = softmax_j(cap(scale · q·k)) · v over visible keys (zeros when none is), in
// double, from host f32 q[Tq, H, hd] and k/v[Tk, KV, hd].
std::vector<double> attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);

inline double gelu_tanh(double x) {
    return 0.5 * x * (1 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
inline double gelu_erf(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

// bf16 storage tolerance: output rounding alone gives ~2e-3.
constexpr double kBf16Tol = 1e-2;
// f16 has 3 more mantissa bits: its rounding is 8 times finer.
constexpr double kF16Tol = 2e-3;
// The storage tolerance of act().
inline double tol() { return act() == DType::f16 ? kF16Tol : kBf16Tol; }

// v rounded to act() (what storing it on the device gives).
inline float round_act(float v) {
    return act() == DType::f16 ? f16_to_f32(f32_to_f16(v)) : bf16_to_f32(f32_to_bf16(v));
}

// Runs f once per activation dtype (act() set, a trace naming it); bf16 again afterwards.
template <class F>
void for_each_act(F f) {
    struct Restore {
        ~Restore() { set_act(DType::bf16); }
    } restore;
    for (DType a : {DType::bf16, DType::f16}) {
        set_act(a);
        SCOPED_TRACE(dtype_name(a));
        f();
    }
}

// A fixture running its tests once per activation dtype (the parameter).
class CudaDtypes : public ::testing::TestWithParam<DType> {
protected:
    void SetUp() override { set_act(GetParam()); }
    void TearDown() override { set_act(DType::bf16); }
};
inline std::string dtype_test_name(const ::testing::TestParamInfo<DType>& info) { return dtype_name(info.param); }
#define VIDI_CUDA_DTYPES(Suite) \
    INSTANTIATE_TEST_SUITE_P(Dtypes, Suite, ::testing::Values(DType::bf16, DType::f16), dtype_test_name)

}  // namespace vidi::cuda::test
