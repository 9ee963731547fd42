// Device-side helpers of the CUDA suite that need a kernel of their own.
// (Kept apart from cuda_test_util.h, which declares them, so that nvcc never parses GoogleTest.)
#include <cuda_runtime.h>

#include <vector>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"

namespace vidi::cuda::test {
namespace {

__global__ void soft_cap_kernel(const float* in, float* out, int n, float cap) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = soft_cap(in[i], cap);
}

}  // namespace

std::vector<float> soft_cap_on_device(const std::vector<float>& scores, float cap) {
    const int n = static_cast<int>(scores.size());
    float* d = nullptr;
    VIDI_CUDA_CHECK(cudaMalloc(&d, 2 * scores.size() * sizeof(float)));
    std::vector<float> out(scores.size());
    VIDI_CUDA_CHECK(cudaMemcpy(d, scores.data(), scores.size() * sizeof(float), cudaMemcpyHostToDevice));
    soft_cap_kernel<<<(n + 255) / 256, 256>>>(d, d + n, n, cap);
    VIDI_CUDA_CHECK_LAUNCH("soft_cap test");
    VIDI_CUDA_CHECK(cudaMemcpy(out.data(), d + n, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    VIDI_CUDA_CHECK(cudaFree(d));
    return out;
}

}  // namespace vidi::cuda::test
