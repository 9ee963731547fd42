#include "cuda_test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

namespace vidi::cuda::test {

namespace {
DType g_act = DType::bf16;

CudaBackend& backend_of(DType act) {
    static std::unique_ptr<CudaBackend> be[2];
    std::unique_ptr<CudaBackend>& b = be[act == DType::f16 ? 1 : 0];
    if (!b) {
        b = std::make_unique<CudaBackend>(0, act);
        b->set_poison_new_tensors(true);
        std::fprintf(stderr, "[cuda tests] %s\n", b->name().c_str());
    }
    return *b;
}
}  // namespace

CudaBackend& backend() { return backend_of(g_act); }
DType act() { return g_act; }
void set_act(DType act) {
    VIDI_CHECK(act == DType::bf16 || act == DType::f16, "cuda tests: no backend computes in ", dtype_name(act));
    g_act = act;
}

Tensor dev(const Tensor& host) { return backend().upload(host); }

double expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what) {
    const Tensor host = backend().to_host(got);
    EXPECT_EQ(host.numel(), static_cast<int64_t>(ref.size())) << what;
    if (host.numel() != static_cast<int64_t>(ref.size())) return INFINITY;
    const float* g = host.data<float>();
    int64_t bad = -1;
    for (size_t i = 0; i < ref.size() && bad < 0; ++i)
        if (!std::isfinite(g[i])) bad = static_cast<int64_t>(i);
    EXPECT_LT(bad, 0) << what << ": element " << bad << " is " << (bad >= 0 ? g[bad] : 0.0f)
                      << " (unwritten or overflow)";
    const double rel = vidi::test::rel_err(host, ref);
    EXPECT_LE(rel, tol) << what << ": relative error " << rel;
    return rel;
}

std::vector<float> host_values(const Tensor& t) { return backend().to_host(t).to_f32_vector(); }

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << what;
}

void expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what) {
    const Tensor host = backend().to_host(got);
    ASSERT_EQ(host.numel(), static_cast<int64_t>(ref.size())) << what;
    const float* g = host.data<float>();
    for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_EQ(static_cast<double>(g[i]), ref[i]) << what << ": element " << i;
}

}  // namespace vidi::cuda::test
