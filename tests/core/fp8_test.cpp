// The host's E4M3 conversion: every code's value from the format's definition, round trips,
// ties to even, saturation; and, where the CUDA toolkit's headers are there, the same codes as
// NVIDIA's own host conversion (cuda_fp8.h) over a dense sweep of floats.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/fp8.h"

#if __has_include(<cuda_fp8.h>)
#include <cuda_fp8.h>
#define VIDI_HAVE_CUDA_FP8 1
#endif

namespace vidi {
namespace {

TEST(Fp8E4m3, CodesDecodeAsTheFormatDefines) {
    EXPECT_EQ(e4m3_to_float(0x00), 0.0f);
    EXPECT_TRUE(std::signbit(e4m3_to_float(0x80)));
    EXPECT_EQ(e4m3_to_float(0x01), 0.001953125f);  // the smallest subnormal, 2^-9
    EXPECT_EQ(e4m3_to_float(0x07), 7 * 0.001953125f);
    EXPECT_EQ(e4m3_to_float(0x08), 0.015625f);  // the smallest normal, 2^-6
    EXPECT_EQ(e4m3_to_float(0x38), 1.0f);
    EXPECT_EQ(e4m3_to_float(0x45), 3.25f);
    EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);
    EXPECT_EQ(e4m3_to_float(0xC2), -2.5f);
    EXPECT_TRUE(std::isnan(e4m3_to_float(0x7F)));
    EXPECT_TRUE(std::isnan(e4m3_to_float(0xFF)));
}

TEST(Fp8E4m3, EveryFiniteCodeRoundTripsAndOrdersItsValues) {
    for (int c = 0; c < 256; ++c) {
        if ((c & 0x7F) == 0x7F) continue;
        const float v = e4m3_to_float(static_cast<uint8_t>(c));
        if (c == 0x80) {
            EXPECT_EQ(float_to_e4m3(v), 0x80);  // -0 keeps its sign
            continue;
        }
        EXPECT_EQ(float_to_e4m3(v), c) << v;
        if ((c & 0x7F) > 0) EXPECT_GT(std::fabs(v), std::fabs(e4m3_to_float(static_cast<uint8_t>(c - 1))));
    }
}

TEST(Fp8E4m3, HalfwayValuesGoToTheEvenCodeAndLargeOnesSaturate) {
    EXPECT_EQ(float_to_e4m3(1.0625f), 0x38);  // between 1 (0x38) and 1.125 (0x39): even
    EXPECT_EQ(float_to_e4m3(1.1875f), 0x3A);  // between 1.125 (0x39) and 1.25 (0x3A): even
    EXPECT_EQ(float_to_e4m3(1.07f), 0x39);
    EXPECT_EQ(float_to_e4m3(0.0009765625f), 0x00);  // half the smallest subnormal: to 0
    EXPECT_EQ(float_to_e4m3(0.00293f), 0x02);       // 1.5 subnormal steps (up to even 2)
    EXPECT_EQ(float_to_e4m3(464.0f), 0x7E);         // past 448 (and past the NaN code's place)
    EXPECT_EQ(float_to_e4m3(1e30f), 0x7E);
    EXPECT_EQ(float_to_e4m3(-std::numeric_limits<float>::infinity()), 0xFE);
    EXPECT_EQ(float_to_e4m3(std::nanf("")), 0x7F);
}

#ifdef VIDI_HAVE_CUDA_FP8
TEST(Fp8E4m3, TheSameCodesAsCudasHostConversion) {
    int64_t checked = 0;
    for (float x = 1e-4f; x < 600.0f; x *= 1.0007f)
        for (float s : {x, -x}) {
            const auto want = static_cast<uint8_t>(__nv_cvt_float_to_fp8(s, __NV_SATFINITE, __NV_E4M3));
            ASSERT_EQ(float_to_e4m3(s), want) << s;
            ++checked;
        }
    for (int c = 0; c < 256; ++c) {  // and every code's midpoint with its neighbour
        if ((c & 0x7F) >= 0x7E) continue;
        const float mid = 0.5f * (e4m3_to_float(static_cast<uint8_t>(c)) + e4m3_to_float(static_cast<uint8_t>(c + 1)));
        ASSERT_EQ(float_to_e4m3(mid), static_cast<uint8_t>(__nv_cvt_float_to_fp8(mid, __NV_SATFINITE, __NV_E4M3)))
            << mid;
    }
    EXPECT_GT(checked, 20000);
}
#endif

}  // namespace
}  // namespace vidi
