// The CUDA backend's own tests (its memory, its step graphs, which paths its kernels take):
// one backend per activation dtype (bf16, f16) per process, poisoning every new tensor with
// NaN so unwritten outputs fail. Its ops are checked with every other backend's by the
// parameterised suite (tests/backend), on the same references (tests/backend/reference.h).
// Suites run once per activation dtype derive their fixture from CudaDtypes and instantiate
// it with VIDI_CUDA_DTYPES.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/reference.h"

namespace vidi {
inline void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }
}  // namespace vidi

namespace vidi::cuda::test {

using vidi::test::kBf16Tol;
using vidi::test::kF16Tol;
using vidi::test::random_host;
using vidi::test::rng;
using vidi::test::values;

// The backend of the activation dtype under test (bf16 unless a CudaDtypes test set another).
CudaBackend& backend();
DType act();
void set_act(DType act);  // bf16 or f16

// The storage tolerance of act().
inline double tol() { return act() == DType::f16 ? kF16Tol : kBf16Tol; }
// v rounded to act() (what storing it on the device gives).
inline float round_act(float v) {
    return act() == DType::f16 ? f16_to_f32(f32_to_f16(v)) : bf16_to_f32(f32_to_bf16(v));
}

// Uploads a host tensor (to the activation dtype) and returns it.
Tensor dev(const Tensor& host);
// Copies `got` (device) to the host and compares it with `ref`: every element must be
// finite and ‖got − ref‖ / ‖ref‖ ≤ tol. Returns the relative error.
double expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what);
// Exact equality (for gathers and copies).
void expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what);
// Device tensor t, or its row r, downloaded as f32 (exact for 16-bit values).
std::vector<float> host_values(const Tensor& t);
inline std::vector<float> host_row(const Tensor& t, int64_t r) { return host_values(t.rows(r, r + 1)); }
// The same bits, value for value (a row computed in a batch and alone, two paths that must agree).
void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what);

// The attention kernels' soft-cap (common.cuh's soft_cap) of each score, computed on the device.
std::vector<float> soft_cap_on_device(const std::vector<float>& scores, float cap);

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
