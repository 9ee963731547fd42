// Rotate-half rotary embedding. Frequencies and angles in f32 as HF computes them
// (inv_freq = 1 / theta^(2i/hd), angle = pos · inv_freq); the rotation itself is applied in
// f32 and rounded to the activations' 16-bit type once.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

// Rotates the pair (i, i + hd/2) of src's row at position `pos` into dst's row (may be src).
template <class T>
__device__ inline void rotate_pair(const T* src, T* dst, int64_t i, int64_t hd, int64_t pos, float theta) {
    const int64_t half = hd / 2;
    const float inv_freq = 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
    float s, c;
    sincosf(static_cast<float>(pos) * inv_freq, &s, &c);
    const float lo = to_float(src[i]), hi = to_float(src[i + half]);
    store_float(dst + i, lo * c - hi * s);
    store_float(dst + i + half, hi * c + lo * s);
}

// In place on x[T, H, hd] at positions pos0 + t.
template <class T>
__global__ void rope_kernel(T* x, int64_t H, int64_t rows, int64_t hd, int64_t pos0, float theta) {
    const int64_t half = hd / 2, n = rows * H * half;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, th = e / half;
        T* row = x + th * hd;
        rotate_pair(row, row, i, hd, pos0 + th / H, theta);
    }
}

// Heads 0..H-1 of a position are q's (rotated in place), heads H..H+KV-1 k's (rotated into
// k_cache) and v's (copied into v_cache), at position *pos + t. Rows past the cache are
// not written.
template <class T>
__global__ void rope_cache_kernel(RopeCacheArgs<T> a) {
    const int64_t half = a.hd / 2, heads = a.H + a.KV, n = a.T * heads * half, p0 = *a.pos;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, th = e / half, t = th / heads, h = th % heads, pos = p0 + t;
        if (h < a.H) {
            T* row = a.q + (t * a.H + h) * a.hd;
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

// rope_cache_kernel for one token of each of a.B sequences: row b is at position pos[b] and
// has its own caches.
template <class T>
__global__ void rope_cache_rows_kernel(RopeCacheRows<T> a) {
    const int64_t half = a.hd / 2, heads = a.H + a.KV, n = a.B * heads * half;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, bh = e / half, b = bh / heads, h = bh % heads, pos = a.pos[b];
        if (h < a.H) {
            T* row = a.q + (b * a.H + h) * a.hd;
            rotate_pair(row, row, i, a.hd, pos, a.theta);
            continue;
        }
        if (pos < 0 || pos >= a.cache_rows[b]) continue;
        const int64_t src = (b * a.KV + h - a.H) * a.hd, dst = (pos * a.KV + h - a.H) * a.hd;
        rotate_pair(a.k + src, a.k_cache[b] + dst, i, a.hd, pos, a.theta);
        a.v_cache[b][dst + i] = a.v[src + i];
        a.v_cache[b][dst + i + half] = a.v[src + i + half];
    }
}

}  // namespace

template <class T>
void rope_and_cache_rows(const RopeCacheRows<T>& a, cudaStream_t stream) {
    VIDI_CHECK(a.B >= 0 && a.B <= kRopeRowsMax, "rope_and_cache_rows: ", a.B, " rows (at most ", kRopeRowsMax, ")");
    const int64_t n = a.B * (a.H + a.KV) * (a.hd / 2);
    if (n == 0) return;
    rope_cache_rows_kernel<<<grid_for(n, 256), 256, 0, stream>>>(a);
    VIDI_CUDA_CHECK_LAUNCH("rope_and_cache_kv_rows_");
}

template <class T>
void rope_inplace(T* x, int64_t rows, int64_t H, int64_t hd, int64_t pos0, float theta, cudaStream_t stream) {
    const int64_t n = rows * H * (hd / 2);
    if (n == 0) return;
    rope_kernel<<<grid_for(n, 256), 256, 0, stream>>>(x, H, rows, hd, pos0, theta);
    VIDI_CUDA_CHECK_LAUNCH("rope_");
}

template <class T>
void rope_and_cache(const RopeCacheArgs<T>& a, cudaStream_t stream) {
    const int64_t n = a.T * (a.H + a.KV) * (a.hd / 2);
    if (n == 0) return;
    rope_cache_kernel<<<grid_for(n, 256), 256, 0, stream>>>(a);
    VIDI_CUDA_CHECK_LAUNCH("rope_and_cache_kv_");
}

#define VIDI_ROPE(T)                                                                                \
    template void rope_inplace<T>(T*, int64_t, int64_t, int64_t, int64_t, float, cudaStream_t);   \
    template void rope_and_cache<T>(const RopeCacheArgs<T>&, cudaStream_t);                       \
    template void rope_and_cache_rows<T>(const RopeCacheRows<T>&, cudaStream_t);
VIDI_ROPE(bf16)
VIDI_ROPE(fp16)

}  // namespace vidi::cuda
