// Float dtype conversion on the device (uploads, downloads and copy_ between dtypes).
#include <cuda_fp16.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

// The dtypes are kernel arguments, not template parameters: one kernel serves all nine
// pairs, and the branch is uniform across the grid.
__device__ inline float load_as_float(const void* p, DType t, int64_t i) {
    switch (t) {
        case DType::f32: return static_cast<const float*>(p)[i];
        case DType::f16: return __half2float(static_cast<const __half*>(p)[i]);
        default: return __bfloat162float(static_cast<const bf16*>(p)[i]);
    }
}

__device__ inline void store_float(void* p, DType t, int64_t i, float v) {
    switch (t) {
        case DType::f32: static_cast<float*>(p)[i] = v; break;
        case DType::f16: static_cast<__half*>(p)[i] = __float2half_rn(v); break;
        default: static_cast<bf16*>(p)[i] = __float2bfloat16_rn(v); break;
    }
}

__global__ void convert_kernel(void* dst, DType dt, const void* src, DType st, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        store_float(dst, dt, i, load_as_float(src, st, i));
}

}  // namespace

void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n, cudaStream_t stream) {
    if (n == 0) return;
    constexpr int kThreads = 256;
    convert_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(dst, dst_dtype, src, src_dtype, n);
    VIDI_CUDA_CHECK_LAUNCH("convert");
}

}  // namespace vidi::cuda
