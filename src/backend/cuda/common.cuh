// Device helpers shared by the kernels: bf16 vectors of 8 (one 16-byte load), warp and
// block reductions, and the grid-size rule for grid-stride loops.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace vidi::cuda {

using bf16 = __nv_bfloat16;

constexpr int kVec = 8;  // bf16 elements in one 16-byte vector

// Blocks for a grid-stride loop over `work` items: enough to fill any current GPU,
// few enough that each thread does several items.
inline unsigned grid_for(int64_t work, int threads) {
    const int64_t blocks = (work + threads - 1) / threads;
    return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, 8192));
}

union Bf16x8 {
    uint4 u;
    __nv_bfloat162 h2[4];
};

__device__ inline void load8(const bf16* p, float (&f)[8]) {
    Bf16x8 v;
    v.u = *reinterpret_cast<const uint4*>(p);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 t = __bfloat1622float2(v.h2[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

__device__ inline void store8(bf16* p, const float (&f)[8]) {
    Bf16x8 v;
#pragma unroll
    for (int i = 0; i < 4; ++i) v.h2[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = v.u;
}

// The same for f32 rows (two 16-byte halves): residual streams kept in f32.
__device__ inline void load8(const float* p, float (&f)[8]) {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

__device__ inline void store8(float* p, const float (&f)[8]) {
    reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

// Scalar element access for kernels templated on bf16 or f32 storage.
__device__ inline float to_float(bf16 v) { return __bfloat162float(v); }
__device__ inline float to_float(float v) { return v; }
__device__ inline void store_float(bf16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ inline void store_float(float* p, float v) { *p = v; }

__device__ inline float2 bf16x2_to_float2(uint32_t w) {
    __nv_bfloat162 h;
    static_assert(sizeof(h) == sizeof(w));
    memcpy(&h, &w, sizeof(w));
    return __bfloat1622float2(h);
}

__device__ inline uint32_t float2_to_bf16x2(float a, float b) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    uint32_t w;
    memcpy(&w, &h, sizeof(w));
    return w;
}

// Four signed bytes -> exact floats without the slow int-to-float conversion: each byte,
// biased by 128, becomes the low mantissa bits of 2^23, and 2^23 + 128 is subtracted.
__device__ inline void i8x4_to_float(uint32_t w, float* f) {
    const uint32_t u = w ^ 0x80808080u;
#pragma unroll
    for (int i = 0; i < 4; ++i) f[i] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7650u + i)) - 8388736.0f;
}

// GELU, tanh form (Gemma's hidden activation and GeGLU gate).
__device__ inline float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

// SiLU x·sigmoid(x) (SwiGLU's gate).
__device__ inline float silu(float x) { return x / (1.0f + __expf(-x)); }

__device__ inline float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

__device__ inline float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ inline float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Asynchronous global-to-shared copies (sm_80+): `bytes` (4, 8 or 16) from src to dst, of
// which the first `src_bytes` are read and the rest zero-filled (0: nothing is read). A warp
// commits its copies as a group and waits until at most N groups are still in flight.
template <int kBytes>
__device__ inline void cp_async(void* dst, const void* src, int src_bytes) {
    const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    if constexpr (kBytes == 16)  // .cg: through L2 only, the data is used once
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(d), "l"(src), "n"(kBytes),
                     "r"(src_bytes));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets
// the result. `scratch` holds 32 floats of shared memory; safe to call repeatedly.
__device__ inline float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

}  // namespace vidi::cuda
