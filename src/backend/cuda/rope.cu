// Rotate-half rotary embedding, in place on x[T, H, hd]. Frequencies and angles in f32
// as HF computes them (inv_freq = 1 / theta^(2i/hd), angle = pos · inv_freq); the rotation
// itself is applied in f32 and rounded to bf16 once.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

__global__ void rope_kernel(bf16* x, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta) {
    const int64_t half = hd / 2, n = T * H * half;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, th = e / half, t = th / H;
        const float inv_freq = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
        const float angle = static_cast<float>(pos0 + t) * inv_freq;
        float s, c;
        sincosf(angle, &s, &c);
        bf16* row = x + th * hd;
        const float x1 = __bfloat162float(row[i]), x2 = __bfloat162float(row[i + half]);
        row[i] = __float2bfloat16_rn(x1 * c - x2 * s);
        row[i + half] = __float2bfloat16_rn(x2 * c + x1 * s);
    }
}

}  // namespace

void rope_inplace(bf16* x, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta, cudaStream_t stream) {
    const int64_t n = T * H * (hd / 2);
    if (n == 0) return;
    rope_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, T, H, hd, pos0, theta);
    VIDI_CUDA_CHECK_LAUNCH("rope_");
}

}  // namespace vidi::cuda
