// Rows of 16-bit values to FP8 E4M3 with one f32 scale a row, for the GEMM's FP8 inputs
// (Gemm::linear_fp8): scale = amax / 448 (E4M3's largest finite value), code = E4M3(x / scale)
// rounded to nearest even, saturating. One block a row: the row's amax, then its codes.
#include <cuda_fp8.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kThreads = 256;

template <class T>
__global__ void quantize_rows_e4m3_kernel(const T* __restrict__ x, int64_t K, uint8_t* __restrict__ codes,
                                          float* __restrict__ scales) {
    __shared__ float scratch[32];
    const T* row = x + blockIdx.x * K;
    uint8_t* out = codes + blockIdx.x * K;
    float amax = 0.0f;
    for (int64_t k = threadIdx.x; k < K; k += kThreads) amax = fmaxf(amax, fabsf(to_float(row[k])));
    amax = warp_max(amax);
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = amax;
    __syncthreads();
    const int lane = threadIdx.x & 31;
    amax = lane < kThreads / 32 ? scratch[lane] : 0.0f;
    amax = warp_max(amax);  // every warp reduces the warps' maxima: all threads agree
    // A row of zeros keeps scale 1 (its codes are zeros either way).
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    if (threadIdx.x == 0) scales[blockIdx.x] = scale;
    for (int64_t k = threadIdx.x; k < K; k += kThreads)
        out[k] = __nv_cvt_float_to_fp8(to_float(row[k]) / scale, __NV_SATFINITE, __NV_E4M3);
}

}  // namespace

template <class T>
void quantize_rows_e4m3(uint8_t* codes, float* scales, const T* x, int64_t rows, int64_t K, cudaStream_t stream) {
    if (rows == 0) return;
    quantize_rows_e4m3_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, K, codes, scales);
    VIDI_CUDA_CHECK(cudaGetLastError());
}

template void quantize_rows_e4m3<bf16>(uint8_t*, float*, const bf16*, int64_t, int64_t, cudaStream_t);
template void quantize_rows_e4m3<fp16>(uint8_t*, float*, const fp16*, int64_t, int64_t, cudaStream_t);

}  // namespace vidi::cuda
