// FP8 E4M3 rows as the FP8 GEMM takes them (Gemm::linear_fp8): one f32 scale a row, amax / 448
// (E4M3's largest finite value; 1 for a row of zeros, whose codes are zeros either way), each
// code E4M3(x / scale) rounded to nearest even, saturating. Shared by every kernel that writes
// such rows (fp8_quantize.cu, and norm.cu's LayerNorm straight into FP8), so that they agree
// bit for bit.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace vidi::cuda {

__device__ inline float e4m3_scale(float amax) { return amax > 0.0f ? amax / 448.0f : 1.0f; }

__device__ inline uint8_t e4m3(float v, float scale) {
    return __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
}

// Eight values' codes, packed for one 8-byte store.
__device__ inline uint2 e4m3x8(const float (&f)[8], float scale) {
    uint32_t word[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 8; ++i) word[i / 4] |= uint32_t(e4m3(f[i], scale)) << (8 * (i % 4));
    return make_uint2(word[0], word[1]);
}

}  // namespace vidi::cuda
