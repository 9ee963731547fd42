// Row norms: one block per row; the row is read once for the statistics and again
// (from L1/L2) for the output. LayerNorm of rows up to 1536 (the towers') takes a warp a row
// instead, the row held in registers, and can write the row as an FP8 GEMM's input (E4M3
// codes and a scale, no 16-bit round trip: a tower's q/k/v or fc1 in an FP8 encode).
// Statistics in f32, two-pass for LayerNorm's variance.
// RMSNorm also reads and updates f32 residual streams (the decoder keeps them in f32 with bf16
// activations). Storage is the activations' 16-bit type T (bf16 or fp16) or f32.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/e4m3.cuh"
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
// when `vec`, else one at a time. X is a 16-bit type or float (an f32 residual stream).
template <class X, class F>
__device__ inline void for_each_in_row(const X* x, int64_t D, bool vec, F f) {
    if (vec) {
        for (int64_t i = threadIdx.x * int64_t(kVec); i < D; i += int64_t(blockDim.x) * kVec) {
            float v[8];
            load8(x + i, v);
#pragma unroll
            for (int k = 0; k < 8; ++k) f(i + k, v[k]);
        }
    } else {
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) f(i, to_float(x[i]));
    }
}


// Writes yr[i] = f(i, xr[i]) over the row; with `vec` (x and y 16-byte aligned, D a multiple
// of 8) 8 elements at a time with 16-byte loads and stores.
template <class Y, class X, class F>
__device__ inline void write_row(Y* yr, const X* xr, int64_t D, bool vec, F f) {
    if (vec) {
        for (int64_t i = threadIdx.x * int64_t(kVec); i < D; i += int64_t(blockDim.x) * kVec) {
            float v[8], out[8];
            load8(xr + i, v);
#pragma unroll
            for (int k = 0; k < 8; ++k) out[k] = f(i + k, v[k]);
            store8(yr + i, out);
        }
    } else {
        for (int64_t i = threadIdx.x; i < D; i += blockDim.x) store_float(yr + i, f(i, to_float(xr[i])));
    }
}

template <class T>
__device__ inline float norm_gain(const T* w, int64_t i, int mode) {
    return mode == 1 ? to_float(w[i]) : mode == 2 ? 1.0f + to_float(w[i]) : 1.0f;
}

// Over row xr: the sum of squares, then inv = 1 / rms.
template <class X>
__device__ inline float inv_rms(const X* xr, int64_t D, float eps, bool vec, float* scratch) {
    float ss = 0.0f;
    for_each_in_row(xr, D, vec, [&](int64_t, float v) { ss += v * v; });
    return rsqrtf(block_sum(ss, scratch) / static_cast<float>(D) + eps);
}

// y = rms_norm(x) (· w), or with `add`: y += that, the norm rounded to T before the sum as
// when the two ops run apart (y is then the residual stream, read and written in place, T or
// f32; an f32 stream is not rounded after the sum). With next_y as well: next_y =
// rms_norm(y) (· next_w), the next sub-layer's input. Each thread reads back only the
// elements it wrote itself, so no barrier is needed in between.
template <class T, class Y, class X>
__global__ void rms_norm_kernel(Y* y, const X* x, const T* w, int64_t D, float eps, int mode, bool vec, bool add,
                                T* next_y, const T* next_w) {
    __shared__ float scratch[32];
    dependents_may_start();  // a GEMV that reads y may fetch its weights meanwhile
    const X* xr = x + blockIdx.x * D;
    Y* yr = y + blockIdx.x * D;
    const float inv = inv_rms(xr, D, eps, vec, scratch);
    write_row(yr, xr, D, vec, [&](int64_t i, float v) {
        const float n = v * inv * norm_gain(w, i, mode);
        return add ? to_float(yr[i]) + round_to<T>(n) : n;
    });
    if (!next_y) return;
    const float inv_next = inv_rms(yr, D, eps, vec, scratch);
    write_row(next_y + blockIdx.x * D, yr, D, vec,
              [&](int64_t i, float v) { return v * inv_next * norm_gain(next_w, i, mode); });
}

// y += x (the sub-layer's output as it is), then next_y = rms_norm(y) · w: as add_ and
// rms_norm apart (a 16-bit stream is rounded after the sum, an f32 one not).
template <class T, class Y>
__global__ void add_then_rms_norm_kernel(Y* y, const T* x, T* next_y, const T* w, int64_t D, float eps, int mode,
                                         bool vec) {
    __shared__ float scratch[32];
    dependents_may_start();
    const T* xr = x + blockIdx.x * D;
    Y* yr = y + blockIdx.x * D;
    write_row(yr, xr, D, vec, [&](int64_t i, float v) { return to_float(yr[i]) + v; });
    const float inv = inv_rms(yr, D, eps, vec, scratch);
    write_row(next_y + blockIdx.x * D, yr, D, vec, [&](int64_t i, float v) { return v * inv * norm_gain(w, i, mode); });
}

template <class T>
__global__ void layer_norm_kernel(T* y, const T* x, const T* w, const T* b, int64_t D, float eps, bool vec) {
    __shared__ float scratch[32];
    const T* xr = x + blockIdx.x * D;
    T* yr = y + blockIdx.x * D;
    float sum = 0.0f;
    for_each_in_row(xr, D, vec, [&](int64_t, float v) { sum += v; });
    const float mean = block_sum(sum, scratch) / static_cast<float>(D);
    float var = 0.0f;
    for_each_in_row(xr, D, vec, [&](int64_t, float v) { var += (v - mean) * (v - mean); });
    const float inv = rsqrtf(block_sum(var, scratch) / static_cast<float>(D) + eps);
    write_row(yr, xr, D, vec, [&](int64_t i, float v) { return (v - mean) * inv * to_float(w[i]) + to_float(b[i]); });
}

// LayerNorm of rows short enough for one warp (the towers' 1152 and 1280): the row's 8-element
// vectors stay in the lanes' registers (vector j of lane l is l + 32·j), so it is read from
// memory once, and the reductions are shuffles with no barrier. kVecs: vectors a lane holds.
// kFp8: the row, rounded to T as y would store it, goes on into E4M3 codes and its scale
// (e4m3.cuh) for an FP8 GEMM, the bits quantize_rows_e4m3 would make of y; y may be null then.
template <class T, int kVecs, bool kFp8>
__global__ void layer_norm_warp_kernel(T* y, const T* x, const T* w, const T* b, int64_t rows, int D, float eps,
                                       uint8_t* codes, float* scales) {
    const int lane = threadIdx.x & 31;
    const int64_t r = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
    if (r >= rows) return;
    const int vecs = D / kVec;
    const T* xr = x + r * D;
    float v[kVecs][8];
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kVecs; ++j) {
        const int i = lane + 32 * j;
        if (i < vecs) {
            load8(xr + i * kVec, v[j]);
#pragma unroll
            for (int k = 0; k < 8; ++k) sum += v[j][k];
        }
    }
    const float mean = warp_sum(sum) / static_cast<float>(D);
    float var = 0.0f;
#pragma unroll
    for (int j = 0; j < kVecs; ++j)
        if (lane + 32 * j < vecs)
#pragma unroll
            for (int k = 0; k < 8; ++k) var += (v[j][k] - mean) * (v[j][k] - mean);
    const float inv = rsqrtf(warp_sum(var) / static_cast<float>(D) + eps);
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < kVecs; ++j) {
        const int i = lane + 32 * j;
        if (i < vecs) {
            float g[8], c[8];
            load8(w + i * kVec, g);
            load8(b + i * kVec, c);
#pragma unroll
            for (int k = 0; k < 8; ++k) v[j][k] = (v[j][k] - mean) * inv * g[k] + c[k];
            if (y) store8(y + r * D + i * kVec, v[j]);
            if constexpr (kFp8)
#pragma unroll
                for (int k = 0; k < 8; ++k) {
                    v[j][k] = round_to<T>(v[j][k]);
                    amax = fmaxf(amax, fabsf(v[j][k]));
                }
        }
    }
    if constexpr (kFp8) {
        const float scale = e4m3_scale(warp_max(amax));
        if (lane == 0) scales[r] = scale;
#pragma unroll
        for (int j = 0; j < kVecs; ++j) {
            const int i = lane + 32 * j;
            if (i < vecs) *reinterpret_cast<uint2*>(codes + r * D + i * kVec) = e4m3x8(v[j], scale);
        }
    }
}

// Launches the warp kernel where it takes the rows (false: it does not).
template <class T, bool kFp8>
bool launch_layer_norm_warp(T* y, const T* x, const T* w, const T* b, int64_t rows, int64_t D, float eps,
                            cudaStream_t stream, uint8_t* codes = nullptr, float* scales = nullptr) {
    constexpr int kWarpVecs = 6;  // rows of up to 32 · 6 · 8 = 1536 elements take a warp each
    if (!layer_norm_warp_takes(x, w, b, D) || (y && !aligned16(y)) || reinterpret_cast<uintptr_t>(codes) % 8)
        return false;
    constexpr int kRowsPerBlock = 8;
    const unsigned blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
    const int d = static_cast<int>(D);
    if (D <= 32 * 4 * kVec)
        layer_norm_warp_kernel<T, 4, kFp8><<<blocks, 32 * kRowsPerBlock, 0, stream>>>(y, x, w, b, rows, d, eps, codes,
                                                                                      scales);
    else
        layer_norm_warp_kernel<T, kWarpVecs, kFp8><<<blocks, 32 * kRowsPerBlock, 0, stream>>>(y, x, w, b, rows, d, eps,
                                                                                              codes, scales);
    VIDI_CUDA_CHECK_LAUNCH("layer_norm");
    return true;
}

}  // namespace

template <class T>
void rms_norm(void* y, DType y_dtype, const void* x, DType x_dtype, const T* w, int64_t rows, int64_t D, float eps,
              int mode, cudaStream_t stream, bool add, T* next_y, const T* next_w) {
    if (rows == 0 || D == 0) return;
    const bool vec = D % kVec == 0 && aligned16(x) && aligned16(y) && (!next_y || aligned16(next_y));
    auto launch = [&](auto* yt, const auto* xt) {
        rms_norm_kernel<<<static_cast<unsigned>(rows), threads_for(D), 0, stream>>>(yt, xt, w, D, eps, mode, vec, add,
                                                                                    next_y, next_w);
    };
    const bool y32 = y_dtype == DType::f32, x32 = x_dtype == DType::f32;
    if (!y32 && !x32)
        launch(static_cast<T*>(y), static_cast<const T*>(x));
    else if (y32 && !x32)  // a sub-layer's 16-bit output added into an f32 residual stream
        launch(static_cast<float*>(y), static_cast<const T*>(x));
    else if (!y32 && x32)  // an f32 residual stream normalised into a 16-bit input
        launch(static_cast<T*>(y), static_cast<const float*>(x));
    else
        fail("rms_norm: f32 in and out is not a case of this backend");
    VIDI_CUDA_CHECK_LAUNCH("rms_norm");
}

template <class T>
void add_then_rms_norm(void* y, DType y_dtype, const T* x, T* next_y, const T* w, int64_t rows, int64_t D, float eps,
                       int mode, cudaStream_t stream) {
    if (rows == 0 || D == 0) return;
    const bool vec = D % kVec == 0 && aligned16(x) && aligned16(y) && aligned16(next_y);
    const unsigned blocks = static_cast<unsigned>(rows);
    if (y_dtype == DType::f32)
        add_then_rms_norm_kernel<<<blocks, threads_for(D), 0, stream>>>(static_cast<float*>(y), x, next_y, w, D, eps,
                                                                        mode, vec);
    else
        add_then_rms_norm_kernel<<<blocks, threads_for(D), 0, stream>>>(static_cast<T*>(y), x, next_y, w, D, eps,
                                                                        mode, vec);
    VIDI_CUDA_CHECK_LAUNCH("add_then_rms_norm");
}

bool layer_norm_warp_takes(const void* x, const void* w, const void* b, int64_t D) {
    return D > 0 && D % kVec == 0 && D <= 1536 && aligned16(x) && aligned16(w) && aligned16(b);
}

template <class T>
void layer_norm(T* y, const T* x, const T* w, const T* b, int64_t rows, int64_t D, float eps, cudaStream_t stream) {
    if (rows == 0 || D == 0 || launch_layer_norm_warp<T, false>(y, x, w, b, rows, D, eps, stream)) return;
    const bool vec = D % kVec == 0 && aligned16(x) && aligned16(y);
    layer_norm_kernel<<<static_cast<unsigned>(rows), threads_for(D), 0, stream>>>(y, x, w, b, D, eps, vec);
    VIDI_CUDA_CHECK_LAUNCH("layer_norm");
}

template <class T>
void layer_norm_e4m3(uint8_t* codes, float* scales, const T* x, const T* w, const T* b, int64_t rows, int64_t D,
                     float eps, cudaStream_t stream) {
    if (rows == 0) return;
    const bool launched = launch_layer_norm_warp<T, true>(nullptr, x, w, b, rows, D, eps, stream, codes, scales);
    VIDI_CHECK(launched, "layer_norm_e4m3: rows of ", D, " elements (or unaligned ones) are not a case of its kernel");
}

#define VIDI_NORMS(T)                                                                                             \
    template void rms_norm<T>(void*, DType, const void*, DType, const T*, int64_t, int64_t, float, int,         \
                              cudaStream_t, bool, T*, const T*);                                                  \
    template void add_then_rms_norm<T>(void*, DType, const T*, T*, const T*, int64_t, int64_t, float, int,      \
                                       cudaStream_t);                                                            \
    template void layer_norm<T>(T*, const T*, const T*, const T*, int64_t, int64_t, float, cudaStream_t);      \
    template void layer_norm_e4m3<T>(uint8_t*, float*, const T*, const T*, const T*, int64_t, int64_t, float,  \
                                     cudaStream_t);
VIDI_NORMS(bf16)
VIDI_NORMS(fp16)

}  // namespace vidi::cuda
