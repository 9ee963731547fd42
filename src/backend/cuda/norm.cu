// Row norms: one block per row; the row is read once for the statistics and again
// (from L1/L2) for the output. Statistics in f32, two-pass for LayerNorm's variance.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

// Threads per row: enough for one 8-element vector each, 32..256.
int threads_for(int64_t D) {
    int t = 32;
    while (t < 256 && int64_t(t) * kVec < D) t *= 2;
    return t;
}

// Calls f(i, value) for each element of row x[0..D) owned by this thread: 8 at a time
// when `vec`, else one at a time.
template <class F>
__device__ inline void for_each_in_row(const bf16* x, int64_t D, bool vec, F f) {
    if (vec) {
        for (int64_t i = threadIdx.x * int64_t(kVec); i < D; i += int64_t(blockDim.x) * kVec) {
            float v[8];
            load8(x + i, v);
#pragma unroll
            for (int k = 0; k < 8; ++k) f(i + k, v[k]);
        }
    } else {
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) f(i, __bfloat162float(x[i]));
    }
}

__device__ inline float weight_at(const bf16* w, int64_t i) { return __bfloat162float(w[i]); }

// Writes yr[i] = f(i, xr[i], w8) over the row; with `vec` (x, y and the weights all
// 16-byte aligned, D a multiple of 8) 8 elements at a time with 16-byte loads and stores.
template <class F>
__device__ inline void write_row(bf16* yr, const bf16* xr, int64_t D, bool vec, F f) {
    if (vec) {
        for (int64_t i = threadIdx.x * int64_t(kVec); i < D; i += int64_t(blockDim.x) * kVec) {
            float v[8], out[8];
            load8(xr + i, v);
#pragma unroll
            for (int k = 0; k < 8; ++k) out[k] = f(i + k, v[k]);
            store8(yr + i, out);
        }
    } else {
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = __float2bfloat16_rn(f(i, __bfloat162float(xr[i])));
    }
}

// y = rms_norm(x) (· w), or with `add`: y += that, the norm rounded to bf16 before the sum as
// when the two ops run apart (y is then the residual stream, read and written in place).
__global__ void rms_norm_kernel(bf16* y, const bf16* x, const bf16* w, int64_t D, float eps, int mode, bool vec,
                                bool add) {
    __shared__ float scratch[32];
    const bf16* xr = x + blockIdx.x * D;
    bf16* yr = y + blockIdx.x * D;
    float ss = 0.0f;
    for_each_in_row(xr, D, vec, [&](int64_t, float v) { ss += v * v; });
    ss = block_sum(ss, scratch);
    const float inv = rsqrtf(ss / static_cast<float>(D) + eps);
    write_row(yr, xr, D, vec, [&](int64_t i, float v) {
        float g = 1.0f;
        if (mode == 1) g = weight_at(w, i);
        if (mode == 2) g = 1.0f + weight_at(w, i);
        return add ? __bfloat162float(yr[i]) + round_bf16(v * inv * g) : v * inv * g;
    });
}

__global__ void layer_norm_kernel(bf16* y, const bf16* x, const bf16* w, const bf16* b, int64_t D, float eps,
                                  bool vec) {
    __shared__ float scratch[32];
    const bf16* xr = x + blockIdx.x * D;
    bf16* yr = y + blockIdx.x * D;
    float sum = 0.0f;
    for_each_in_row(xr, D, vec, [&](int64_t, float v) { sum += v; });
    const float mean = block_sum(sum, scratch) / static_cast<float>(D);
    float var = 0.0f;
    for_each_in_row(xr, D, vec, [&](int64_t, float v) { var += (v - mean) * (v - mean); });
    const float inv = rsqrtf(block_sum(var, scratch) / static_cast<float>(D) + eps);
    write_row(yr, xr, D, vec, [&](int64_t i, float v) { return (v - mean) * inv * weight_at(w, i) + weight_at(b, i); });
}

}  // namespace

void rms_norm(bf16* y, const bf16* x, const bf16* w, int64_t rows, int64_t D, float eps, int mode,
              cudaStream_t stream, bool add) {
    if (rows == 0 || D == 0) return;
    const bool vec = D % kVec == 0 && aligned16(x) && aligned16(y);
    rms_norm_kernel<<<static_cast<unsigned>(rows), threads_for(D), 0, stream>>>(y, x, w, D, eps, mode, vec, add);
    VIDI_CUDA_CHECK_LAUNCH("rms_norm");
}

void layer_norm(bf16* y, const bf16* x, const bf16* w, const bf16* b, int64_t rows, int64_t D, float eps,
                cudaStream_t stream) {
    if (rows == 0 || D == 0) return;
    const bool vec = D % kVec == 0 && aligned16(x) && aligned16(y);
    layer_norm_kernel<<<static_cast<unsigned>(rows), threads_for(D), 0, stream>>>(y, x, w, b, D, eps, vec);
    VIDI_CUDA_CHECK_LAUNCH("layer_norm");
}

}  // namespace vidi::cuda
