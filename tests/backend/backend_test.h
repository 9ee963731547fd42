// The backend suite runs every op test on every backend the build has (as llama.cpp's
// test-backend-ops does): the CPU always, CUDA when the build has it and a GPU is present
// when the tests start (otherwise its cases are not registered, so nothing is skipped).
// A test is written once against the Backend interface: inputs go up with dev(), results
// come back with host(), and the tolerance follows the backend's activation dtype.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/reference.h"

namespace vidi::test {

enum class BackendKind { cpu, cuda };

// The backends of this run: cpu, then cuda when built with it and a GPU is present.
std::vector<BackendKind> backends_present();
std::string backend_kind_name(BackendKind kind);
// One backend per kind for the whole run. CUDA's poisons every new tensor with NaN, so an
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
    // `f32`: the tolerance on a backend that computes in f32; a bf16 one gets kBf16Tol.
    double tol(double f32) const { return be().act_dtype() == DType::f32 ? f32 : kBf16Tol; }
    Tensor dev(const Tensor& host) const { return be().upload(host); }
    Tensor host(const Tensor& t) const { return be().to_host(t); }
    // The values a backend tensor holds, as doubles (what a reference should start from when
    // the upload rounds).
    std::vector<double> held(const Tensor& t) const { return values(host(t)); }
    // A reference rounded as the backend stores its results (bf16 on a GPU).
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

// Registers `suite` once per backend present: Backends/suite.Test/cpu, .../cuda.
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
