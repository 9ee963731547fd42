// Device helpers shared by the kernels: vectors of 8 16-bit floats (one 16-byte load), the
// conversions of both 16-bit activation types (bf16, fp16) and f32, warp and block
// reductions, and the grid-size rule for grid-stride loops.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace vidi::cuda {

using bf16 = __nv_bfloat16;
using fp16 = __half;

constexpr int kVec = 8;  // 16-bit elements in one 16-byte vector

// Blocks for a grid-stride loop over `work` items: enough to fill any current GPU,
// few enough that each thread does several items.
inline unsigned grid_for(int64_t work, int threads) {
    const int64_t blocks = (work + threads - 1) / threads;
    return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, 8192));
}

// Scalar conversions of the storage types (bf16, fp16, f32): to f32, and from f32 rounded to
// nearest even. Kernels are templated on the storage type and do their math in f32.
__device__ inline float to_float(bf16 v) { return __bfloat162float(v); }
__device__ inline float to_float(fp16 v) { return __half2float(v); }
__device__ inline float to_float(float v) { return v; }
template <class T>
__device__ inline T from_float(float v) {
    if constexpr (std::is_same_v<T, bf16>) return __float2bfloat16_rn(v);
    else if constexpr (std::is_same_v<T, fp16>) return __float2half_rn(v);
    else return v;
}
template <class T>
__device__ inline void store_float(T* p, float v) { *p = from_float<T>(v); }
// x rounded to T and back: what storing and reloading it gives.
template <class T>
__device__ inline float round_to(float x) { return to_float(from_float<T>(x)); }
__device__ inline float round_bf16(float x) { return round_to<bf16>(x); }

// Two 16-bit values packed in a 32-bit word (element 0 in the low half) and two floats.
template <class T>
__device__ inline float2 pair_to_float2(uint32_t w) {
    if constexpr (std::is_same_v<T, bf16>) {  // a bf16 is the high half of its f32
        return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xFFFF0000u));
    } else {
        __half2 h;
        static_assert(sizeof(h) == sizeof(w));
        memcpy(&h, &w, sizeof(w));
        return __half22float2(h);
    }
}
template <class T>
__device__ inline uint32_t float2_to_pair(float a, float b) {
    uint32_t w;
    if constexpr (std::is_same_v<T, bf16>) {
        const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
        memcpy(&w, &h, sizeof(w));
    } else {
        const __half2 h = __floats2half2_rn(a, b);
        memcpy(&w, &h, sizeof(w));
    }
    return w;
}
__device__ inline float2 bf16x2_to_float2(uint32_t w) { return pair_to_float2<bf16>(w); }
__device__ inline uint32_t float2_to_bf16x2(float a, float b) { return float2_to_pair<bf16>(a, b); }

// Eight elements at p (16-byte aligned) to floats and back: one 16-byte access for the 16-bit
// types, two for f32 (residual streams, f32 logits).
template <class T>
__device__ inline void load8(const T* p, float (&f)[8]) {
    if constexpr (std::is_same_v<T, float>) {
        const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
        f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
    } else {
        const uint4 v = *reinterpret_cast<const uint4*>(p);
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 t = pair_to_float2<T>(w[i]);
            f[2 * i] = t.x;
            f[2 * i + 1] = t.y;
        }
    }
}

template <class T>
__device__ inline void store8(T* p, const float (&f)[8]) {
    if constexpr (std::is_same_v<T, float>) {
        reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
        reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
    } else {
        uint4 v;
        v.x = float2_to_pair<T>(f[0], f[1]);
        v.y = float2_to_pair<T>(f[2], f[3]);
        v.z = float2_to_pair<T>(f[4], f[5]);
        v.w = float2_to_pair<T>(f[6], f[7]);
        *reinterpret_cast<uint4*>(p) = v;
    }
}

// Four signed bytes -> exact floats without the slow int-to-float conversion: each byte,
// biased by 128, becomes the low mantissa bits of 2^23, and 2^23 + 128 is subtracted.
__device__ inline void i8x4_to_float(uint32_t w, float* f) {
    const uint32_t u = w ^ 0x80808080u;
#pragma unroll
    for (int i = 0; i < 4; ++i) f[i] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7650u + i)) - 8388736.0f;
}

// Eight 4-bit codes (low nibble first) as exact floats c − bias (bias 0: 0..15; 8: −8..7),
// by the same trick: a nibble in the low mantissa bits of 2^23, then 2^23 + bias subtracted.
template <int kBias>
__device__ inline void u4x8_to_float(uint32_t w, float* f) {
#pragma unroll
    for (int i = 0; i < 8; ++i) f[i] = __uint_as_float(0x4B000000u | ((w >> (4 * i)) & 15u)) - (8388608.0f + kBias);
}

// A scale (or zero point) stored as f16, as the host's round_scale (core/quantize.h): rounded
// to nearest even and saturated at ±65504.
__device__ inline float round_scale_f16(float s) {
    return __half2float(__float2half_rn(fminf(fmaxf(s, -65504.0f), 65504.0f)));
}

// GELU, tanh form (Gemma's hidden activation and GeGLU gate).
__device__ inline float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

// Attention's soft-cap, cap·tanh(s / cap), from one exp and one reciprocal: its absolute error
// is ~1e-7·cap (fp16 inputs alone move a score by ~1e-3). tanhf's longer instruction sequence
// was the costliest part of a compute-bound attention tile (a batch's prompts over the media
// K/V). Saturates to ±cap for large |s|.
__device__ inline float soft_cap(float s, float cap) {
    return cap * (1.0f - __fdividef(2.0f, 1.0f + __expf(__fdividef(2.0f * s, cap))));
}

// SiLU x·sigmoid(x) (SwiGLU's gate).
__device__ inline float silu(float x) { return x / (1.0f + __expf(-x)); }

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

// Programmatic dependent launch (Hopper; no-ops elsewhere). A decoding step is a chain of
// short kernels, each of which used to start only once the one before had drained. A kernel
// launched by launch_early() may start while its predecessor's last blocks still run: it
// fetches what does not depend on them (weights, media K/V) and calls dependency_wait() before
// it reads anything the predecessor writes (or writes anything at all), which returns once the
// predecessor has finished and its writes are visible. dependents_may_start() lets such a
// successor be scheduled as soon as every block of this kernel has begun.
__device__ inline void dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ inline void dependents_may_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::);
#endif
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
