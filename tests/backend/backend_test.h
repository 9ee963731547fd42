// The backend suite runs every op test on every backend the build has (as llama.cpp's
// test-backend-ops does): the CPU always, CUDA in each activation dtype (bf16, f16) when the
// build has it and a GPU is present when the tests start (otherwise its cases are not
// registered, so nothing is skipped). A test is written once against the Backend interface:
// inputs go up with dev(), results come back with host(), and the tolerance follows the
// backend's activation dtype.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/reference.h"

namespace vidi::test {

// A backend and the dtype it computes in: the CPU (f32), CUDA in bf16 or in f16.
enum class BackendKind { cpu, cuda_bf16, cuda_f16 };

// The backends of this run: cpu, then cuda_bf16 and cuda_f16 when built with CUDA and a GPU
// is present.
std::vector<BackendKind> backends_present();
std::string backend_kind_name(BackendKind kind);  // "cpu", "cuda_bf16", "cuda_f16"
// One backend per kind for the whole run. CUDA's poison every new tensor with NaN, so an
// output an op leaves unwritten fails its comparison.
Backend& shared_backend(BackendKind kind);

// What every backend test uses; kind() says which backend.
class OnBackend {
public:
    virtual ~OnBackend() = default;

protected:
    virtual BackendKind kind() const = 0;
    Backend& be() const { return shared_backend(kind()); }
    bool gpu() const { return be().device() != Device::cpu; }
    DType act() const { return be().act_dtype(); }
    // `f32`: the tolerance on a backend that computes in f32; a 16-bit one gets its storage
    // tolerance (kBf16Tol, kF16Tol).
    double tol(double f32) const { return act() == DType::f32 ? f32 : act() == DType::f16 ? kF16Tol : kBf16Tol; }
    Tensor dev(const Tensor& host) const { return be().upload(host); }
    Tensor host(const Tensor& t) const { return be().to_host(t); }
    // The values a backend tensor holds, as doubles (what a reference should start from when
    // the upload rounds).
    std::vector<double> held(const Tensor& t) const { return values(host(t)); }
    // A value, and a reference, rounded as the backend stores its results (its activation
    // dtype: bf16 or f16 on a GPU, f32 on the CPU).
    float round_act(float v) const;
    std::vector<double> stored(std::vector<double> ref) const;
    // `got` (any backend tensor) against `ref`: every element finite and ‖got − ref‖/‖ref‖ ≤ tol.
    double expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what) const;
    // Exact equality (gathers, copies, fused ops against the ops they replace).
    void expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what) const;
};

class BackendTest : public testing::TestWithParam<BackendKind>, public OnBackend {
protected:
    BackendKind kind() const override { return GetParam(); }
};

// Tests over cases as well as backends.
template <class Case>
class BackendCaseTest : public testing::TestWithParam<std::tuple<BackendKind, Case>>, public OnBackend {
protected:
    BackendKind kind() const override { return std::get<0>(this->GetParam()); }
    const Case& the_case() const { return std::get<1>(this->GetParam()); }
};

}  // namespace vidi::test

// Registers `suite` once per backend present: Backends/suite.Test/cpu, .../cuda_bf16, .../cuda_f16.
#define VIDI_BACKEND_SUITE(suite)                                                                    \
    INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::ValuesIn(::vidi::test::backends_present()), \
                             [](const auto& info) { return ::vidi::test::backend_kind_name(info.param); })

// The same for a suite over cases: Backends/suite.Test/cpu_<case index>.
#define VIDI_BACKEND_CASE_SUITE(suite, cases)                                                                     \
    INSTANTIATE_TEST_SUITE_P(                                                                                     \
        Backends, suite, ::testing::Combine(::testing::ValuesIn(::vidi::test::backends_present()), cases),      \
        [](const auto& info) {                                                                                    \
            return ::vidi::test::backend_kind_name(std::get<0>(info.param)) + "_" + std::to_string(info.index); \
        })
