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
    if (cuda_available()) kinds.insert(kinds.end(), {BackendKind::cuda_bf16, BackendKind::cuda_f16});
    return kinds;
}

std::string backend_kind_name(BackendKind kind) {
    switch (kind) {
        case BackendKind::cpu: return "cpu";
        case BackendKind::cuda_bf16: return "cuda_bf16";
        case BackendKind::cuda_f16: return "cuda_f16";
    }
    return "?";
}

Backend& shared_backend(BackendKind kind) {
    static std::unique_ptr<Backend> cpu = make_cpu_backend(2);
    if (kind == BackendKind::cpu) return *cpu;
#ifdef VIDI_WITH_CUDA
    static std::unique_ptr<cuda::CudaBackend> gpus[2];
    std::unique_ptr<cuda::CudaBackend>& gpu = gpus[kind == BackendKind::cuda_f16 ? 1 : 0];
    if (!gpu) {
        gpu = std::make_unique<cuda::CudaBackend>(0, kind == BackendKind::cuda_f16 ? DType::f16 : DType::bf16);
        gpu->set_poison_new_tensors(true);
        std::fprintf(stderr, "[backend tests] %s\n", gpu->name().c_str());
    }
    return *gpu;
#else
    fail("this build has no CUDA backend");
#endif
}

float OnBackend::round_act(float v) const {
    switch (act()) {
        case DType::bf16: return bf16_to_f32(f32_to_bf16(v));
        case DType::f16: return f16_to_f32(f32_to_f16(v));
        default: return v;
    }
}

std::vector<double> OnBackend::stored(std::vector<double> ref) const {
    for (double& v : ref) v = round_act(static_cast<float>(v));
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
