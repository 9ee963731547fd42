// The positional encodings' sinusoid (core/sinusoid.h) on the GPU, in double like the host's:
// the host's sin/cos of a 10-minute video's 6000 audio and 600 frame positions (25 M values)
// ran on the cores the video's decoders were busy with, while the GPU waited.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

// One thread per (row, frequency): both of its values, adjacent, in one 8-byte store.
__global__ void sinusoid_kernel(float* out, const double* positions, int64_t n, const double* freq, int64_t half) {
    for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < n * half;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = idx / half, i = idx % half;
        double s, c;
        sincos(positions[r] * freq[i], &s, &c);
        reinterpret_cast<float2*>(out)[idx] = make_float2(static_cast<float>(s), static_cast<float>(c));
    }
}

}  // namespace

void sinusoid_table(float* out, const double* positions, int64_t n, const double* freq, int64_t half,
                    cudaStream_t stream) {
    constexpr int kThreads = 256;
    sinusoid_kernel<<<grid_for(n * half, kThreads), kThreads, 0, stream>>>(out, positions, n, freq, half);
    VIDI_CUDA_CHECK_LAUNCH("sinusoid_table");
}

}  // namespace vidi::cuda
