// FP8 E4M3 (OCP's "E4M3FN", the format of sm_89/sm_90 tensor cores and of cuBLASLt's FP8
// GEMMs): 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; subnormals; no infinities;
// S.1111.111 is NaN, so the largest finite magnitude is 448. The host's reference conversion,
// for weights converted at load and for the CPU's emulation of the GPU's FP8 products.
#pragma once

#include <cstdint>

namespace vidi {

constexpr float kE4m3Max = 448.0f;

// Nearest E4M3 code, ties to even; beyond ±448 saturates to ±448 (as cuBLASLt's and
// __nv_cvt_float_to_fp8(…, __NV_SATFINITE, …) do); NaN gives 0x7F.
uint8_t float_to_e4m3(float x);
float e4m3_to_float(uint8_t code);

}  // namespace vidi
