// Rotate-half rotary embedding. Frequencies and angles in f32 as HF computes them
// (inv_freq = 1 / theta^(2i/hd), angle = pos · inv_freq); the rotation itself is applied in
// f32 and rounded to bf16 once.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

// Rotates the pair (i, i + hd/2) of src's row at position `pos` into dst's row (may be src).
__device__ inline void rotate_pair(const bf16* src, bf16* dst, int64_t i, int64_t hd, int64_t pos, float theta) {
    const int64_t half = hd / 2;
    const float inv_freq = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
    float s, c;
    sincosf(static_cast<float>(pos) * inv_freq, &s, &c);
    const float lo = __bfloat162float(src[i]), hi = __bfloat162float(src[i + half]);
    dst[i] = __float2bfloat16_rn(lo * c - hi * s);
    dst[i + half] = __float2bfloat16_rn(hi * c + lo * s);
}

// In place on x[T, H, hd] at positions pos0 + t.
__global__ void rope_kernel(bf16* x, int64_t H, int64_t T, int64_t hd, int64_t pos0, float theta) {
    const int64_t half = hd / 2, n = T * H * half;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, th = e / half;
        bf16* row = x + th * hd;
        rotate_pair(row, row, i, hd, pos0 + th / H, theta);
    }
}

// Heads 0..H-1 of a position are q's (rotated in place), heads H..H+KV-1 k's (rotated into
// k_cache) and v's (copied into v_cache), at position *pos + t. Rows past the cache are
// not written.
__global__ void rope_cache_kernel(RopeCacheArgs a) {
    const int64_t half = a.hd / 2, heads = a.H + a.KV, n = a.T * heads * half, p0 = *a.pos;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, th = e / half, t = th / heads, h = th % heads, pos = p0 + t;
        if (h < a.H) {
            bf16* row = a.q + (t * a.H + h) * a.hd;
            rotate_pair(row, row, i, a.hd, pos, a.theta);
            continue;
        }
        if (pos < 0 || pos >= a.cache_rows) continue;
        const int64_t src = (t * a.KV + h - a.H) * a.hd, dst = (pos * a.KV + h - a.H) * a.hd;
        rotate_pair(a.k + src, a.k_cache + dst, i, a.hd, pos, a.theta);
        a.v_cache[dst + i] = a.v[src + i];
        a.v_cache[dst + i + half] = a.v[src + i + half];
    }
}

}  // namespace

void rope_inplace(bf16* x, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta, cudaStream_t stream) {
    const int64_t n = T * H * (hd / 2);
    if (n == 0) return;
    rope_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, H, T, hd, pos0, theta);
    VIDI_CUDA_CHECK_LAUNCH("rope_");
}

void rope_and_cache(const RopeCacheArgs& a, cudaStream_t stream) {
    const int64_t n = a.T * (a.H + a.KV) * (a.hd / 2);
    if (n == 0) return;
    rope_cache_kernel<<<grid_for(n, 256), 256, 0, stream>>>(a);
    VIDI_CUDA_CHECK_LAUNCH("rope_and_cache_kv_");
}

}  // namespace vidi::cuda
