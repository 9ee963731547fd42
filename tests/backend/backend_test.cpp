#include "backend/backend_test.h"

#include <cmath>
#include <cstdio>
#include <memory>

#ifdef VIDI_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace vidi::test {

std::vector<BackendKind> backends_present() {
    std::vector<BackendKind> kinds{BackendKind::cpu};
    if (cuda_available()) kinds.push_back(BackendKind::cuda);
    return kinds;
}

std::string backend_kind_name(BackendKind kind) { return kind == BackendKind::cpu ? "cpu" : "cuda"; }

Backend& shared_backend(BackendKind kind) {
    static std::unique_ptr<Backend> cpu = make_cpu_backend(2);
    if (kind == BackendKind::cpu) return *cpu;
#ifdef VIDI_WITH_CUDA
    static std::unique_ptr<cuda::CudaBackend> gpu = [] {
        auto b = std::make_unique<cuda::CudaBackend>(0);
        b->set_poison_new_tensors(true);
        std::fprintf(stderr, "[backend tests] %s\n", b->name().c_str());
        return b;
    }();
    return *gpu;
#else
    fail("this build has no CUDA backend");
#endif
}

std::vector<double> OnBackend::stored(std::vector<double> ref) const {
    if (be().act_dtype() != DType::f32)
        for (double& v : ref) v = bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
    return ref;
}

double OnBackend::expect_close(const Tensor& got, const std::vector<double>& ref, double tol,
                               const std::string& what) const {
    const Tensor h = host(got);
    EXPECT_EQ(h.numel(), static_cast<int64_t>(ref.size())) << what;
    if (h.numel() != static_cast<int64_t>(ref.size())) return INFINITY;
    const std::vector<float> g = h.to_f32_vector();
    int64_t bad = -1;
    for (size_t i = 0; i < g.size() && bad < 0; ++i)
        if (!std::isfinite(g[i])) bad = static_cast<int64_t>(i);
    EXPECT_LT(bad, 0) << what << ": element " << bad << " is " << (bad >= 0 ? g[bad] : 0.0f)
                      << " (unwritten or overflow)";
    const double rel = rel_err(h, ref);
    EXPECT_LE(rel, tol) << what << ": relative error " << rel;
    return rel;
}

void OnBackend::expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what) const {
    const Tensor h = host(got);
    ASSERT_EQ(h.numel(), static_cast<int64_t>(ref.size())) << what;
    const std::vector<float> g = h.to_f32_vector();
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(static_cast<double>(g[i]), ref[i]) << what << ": element " << i;
}

}  // namespace vidi::test
