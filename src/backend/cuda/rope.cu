// Rotate-half rotary embedding, in place on x[T, H, hd]. Frequencies and angles in f32
// as HF computes them (inv_freq = 1 / theta^(2i/hd), angle = pos · inv_freq); the rotation
// itself is applied in f32 and rounded to bf16 once.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

// Heads 0..H-1 of a position are x's, heads H..H+H2-1 are x2's.
__global__ void rope_kernel(bf16* x, int64_t H, bf16* x2, int64_t H2, int64_t T, int64_t hd, int64_t pos0,
                            float theta) {
    const int64_t half = hd / 2, heads = H + H2, n = T * heads * half;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, th = e / half, t = th / heads, h = th % heads;
        const float inv_freq = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
        const float angle = static_cast<float>(pos0 + t) * inv_freq;
        float s, c;
        sincosf(angle, &s, &c);
        bf16* row = h < H ? x + (t * H + h) * hd : x2 + (t * H2 + h - H) * hd;
        const float lo = __bfloat162float(row[i]), hi = __bfloat162float(row[i + half]);
        row[i] = __float2bfloat16_rn(lo * c - hi * s);
        row[i + half] = __float2bfloat16_rn(hi * c + lo * s);
    }
}

}  // namespace

void rope_inplace(bf16* x, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta, cudaStream_t stream,
                  bf16* x2, int64_t H2) {
    if (!x2) H2 = 0;
    const int64_t n = T * (H + H2) * (hd / 2);
    if (n == 0) return;
    rope_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, H, x2, H2, T, hd, pos0, theta);
    VIDI_CUDA_CHECK_LAUNCH("rope_");
}

}  // namespace vidi::cuda
