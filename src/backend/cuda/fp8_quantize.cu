// Rows of 16-bit values to FP8 E4M3 with one f32 scale a row, for the GEMM's FP8 inputs
// (Gemm::linear_fp8): scale = amax / 448 (E4M3's largest finite value), code = E4M3(x / scale)
// rounded to nearest even, saturating. The values are either a tensor's rows or an MLP's
// gated activation act(gate) ⊙ up computed here (rounded to T, as the separate glu kernel
// stores it), so the activation never makes a trip through memory in 16 bits.
//
// One block a row. The first pass computes the row's values 8 at a time (16-byte loads),
// parks them in shared memory as T and finds the amax; the second turns them into codes
// (8-byte stores). Rows too long for shared memory compute their values twice instead.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/e4m3.cuh"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxStagedBytes = 96 * 1024;  // a row of 48K 16-bit values

// The values of row r: a tensor's.
template <class T>
struct RowsOf {
    const T* x;
    __device__ void load8(int64_t r, int64_t K, int64_t k, float (&f)[8]) const { cuda::load8(x + r * K + k, f); }
    __device__ float at(int64_t r, int64_t K, int64_t k) const { return to_float(x[r * K + k]); }
};

// The values of row r: act(gate) · up, rounded to T.
template <class T, bool kSilu>
struct GatedRowsOf {
    const T* gate;
    const T* up;
    __device__ static float value(float g, float u) { return round_to<T>((kSilu ? silu(g) : gelu_tanh(g)) * u); }
    __device__ void load8(int64_t r, int64_t K, int64_t k, float (&f)[8]) const {
        float u[8];
        cuda::load8(gate + r * K + k, f);
        cuda::load8(up + r * K + k, u);
#pragma unroll
        for (int i = 0; i < 8; ++i) f[i] = value(f[i], u[i]);
    }
    __device__ float at(int64_t r, int64_t K, int64_t k) const {
        return value(to_float(gate[r * K + k]), to_float(up[r * K + k]));
    }
};

// kStaged: the row's values wait in shared memory (K · sizeof(T) bytes) between the passes.
// vec: K a multiple of 8 and every row 16-byte aligned.
template <class T, class Source, bool kStaged>
__global__ void rows_to_e4m3_kernel(Source src, int64_t K, uint8_t* __restrict__ codes, float* __restrict__ scales,
                                    bool vec) {
    extern __shared__ __align__(16) unsigned char staged_raw[];
    T* staged = reinterpret_cast<T*>(staged_raw);
    __shared__ float scratch[32];
    const int64_t r = blockIdx.x;
    uint8_t* out = codes + r * K;
    float amax = 0.0f;
    if (vec) {
        for (int64_t k = threadIdx.x * int64_t(kVec); k < K; k += int64_t(kThreads) * kVec) {
            float f[8];
            src.load8(r, K, k, f);
#pragma unroll
            for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(f[i]));
            if constexpr (kStaged) store8(staged + k, f);
        }
    } else {
        for (int64_t k = threadIdx.x; k < K; k += kThreads) {
            const float v = src.at(r, K, k);
            amax = fmaxf(amax, fabsf(v));
            if constexpr (kStaged) staged[k] = from_float<T>(v);
        }
    }
    amax = warp_max(amax);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = amax;
    __syncthreads();  // also publishes the staged values
    const int lane = threadIdx.x & 31;
    amax = warp_max(lane < kThreads / 32 ? scratch[lane] : 0.0f);  // every warp: all threads agree
    const float scale = e4m3_scale(amax);
    if (threadIdx.x == 0) scales[r] = scale;
    if (vec) {
        for (int64_t k = threadIdx.x * int64_t(kVec); k < K; k += int64_t(kThreads) * kVec) {
            float f[8];
            if constexpr (kStaged) load8(staged + k, f);
            else src.load8(r, K, k, f);
            *reinterpret_cast<uint2*>(out + k) = e4m3x8(f, scale);
        }
    } else {
        for (int64_t k = threadIdx.x; k < K; k += kThreads)
            out[k] = e4m3(kStaged ? to_float(staged[k]) : src.at(r, K, k), scale);
    }
}

template <class T, class Source>
void rows_to_e4m3(const Source& src, bool aligned, uint8_t* codes, float* scales, int64_t rows, int64_t K,
                  cudaStream_t stream) {
    if (rows == 0) return;
    const bool vec = aligned && K % kVec == 0 && reinterpret_cast<uintptr_t>(codes) % 8 == 0;
    const size_t staged = size_t(K) * sizeof(T);
    const unsigned blocks = static_cast<unsigned>(rows);
    if (staged <= kMaxStagedBytes) {
        constexpr auto kernel = rows_to_e4m3_kernel<T, Source, true>;
        if (staged > 48 * 1024)
            VIDI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(staged)));
        kernel<<<blocks, kThreads, staged, stream>>>(src, K, codes, scales, vec);
    } else {
        rows_to_e4m3_kernel<T, Source, false><<<blocks, kThreads, 0, stream>>>(src, K, codes, scales, vec);
    }
    VIDI_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <class T>
void quantize_rows_e4m3(uint8_t* codes, float* scales, const T* x, int64_t rows, int64_t K, cudaStream_t stream) {
    rows_to_e4m3<T>(RowsOf<T>{x}, aligned16(x), codes, scales, rows, K, stream);
}

template <class T>
void glu_rows_e4m3(uint8_t* codes, float* scales, const T* gate, const T* up, int64_t rows, int64_t K, bool silu,
                   cudaStream_t stream) {
    const bool aligned = aligned16(gate) && aligned16(up);
    if (silu) rows_to_e4m3<T>(GatedRowsOf<T, true>{gate, up}, aligned, codes, scales, rows, K, stream);
    else rows_to_e4m3<T>(GatedRowsOf<T, false>{gate, up}, aligned, codes, scales, rows, K, stream);
}

#define VIDI_FP8_ROWS(T)                                                                                    \
    template void quantize_rows_e4m3<T>(uint8_t*, float*, const T*, int64_t, int64_t, cudaStream_t);      \
    template void glu_rows_e4m3<T>(uint8_t*, float*, const T*, const T*, int64_t, int64_t, bool, cudaStream_t);
VIDI_FP8_ROWS(bf16)
VIDI_FP8_ROWS(fp16)

}  // namespace vidi::cuda
