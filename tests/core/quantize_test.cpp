// The host quantiser (the reference for the device kernels): code ranges, exact extremes,
// reconstruction error bounds, and the format parser.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/quantize.h"

using namespace vidi;

namespace {

Tensor random_rows(int64_t rows, int64_t K, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, 0.02f);
    std::vector<float> v(static_cast<size_t>(rows * K));
    for (float& x : v) x = n(rng);
    v[5] = 0.5f;   // an outlier in the first group
    for (int64_t k = 0; k < K; ++k) v[static_cast<size_t>(K + k)] = 0.0f;  // an all-zero row
    return Tensor::from_vector(v, {rows, K});
}

}  // namespace

TEST(Quantize, Int8PerChannelErrorIsAtMostHalfAStep) {
    Tensor x = random_rows(7, 640, 1);
    QTensor q = quantize(x, QuantFormat{8, 0});
    ASSERT_EQ(q.values.dtype(), DType::i8);
    ASSERT_EQ(q.scales.shape(), (Shape{7, 1}));
    EXPECT_EQ(q.group, 640);
    EXPECT_EQ(q.shape(), x.shape());
    Tensor back = dequantize(q);
    for (int64_t r = 0; r < 7; ++r) {
        const float s = q.scales.data<float>()[r];
        for (int64_t k = 0; k < 640; ++k) {
            const float want = x.data<float>()[r * 640 + k], got = back.data<float>()[r * 640 + k];
            ASSERT_LE(std::fabs(got - want), 0.5f * s * 1.0001f + 1e-12f) << r << "," << k;
        }
    }
    EXPECT_EQ(q.scales.data<float>()[1], 0.0f);  // the zero row stays exactly zero
    EXPECT_FLOAT_EQ(back.data<float>()[5], 0.5f);  // the row's extreme is a code of ±127
}

TEST(Quantize, Int4GroupsBeatTheExtremeScaleAndStayWithinClampRange) {
    Tensor x = random_rows(3, 256, 2);
    QTensor q = quantize(x, QuantFormat{4, 64});
    ASSERT_EQ(q.values.dtype(), DType::u8);
    ASSERT_EQ(q.values.shape(), (Shape{3, 128}));
    ASSERT_EQ(q.scales.shape(), (Shape{3, 4}));
    EXPECT_EQ(q.shape(), x.shape());
    Tensor back = dequantize(q);
    for (int64_t r = 0; r < 3; ++r)
        for (int64_t j = 0; j < 4; ++j) {
            const float* xg = x.data<float>() + r * 256 + j * 64;
            const float* bg = back.data<float>() + r * 256 + j * 64;
            const float s = q.scales.data<float>()[r * 4 + j];
            // The plain scale: the extreme maps to -8.
            float extreme = 0;
            for (int i = 0; i < 64; ++i)
                if (std::fabs(xg[i]) > std::fabs(extreme)) extreme = xg[i];
            const float plain = extreme / -8.0f;
            double sse = 0, sse_plain = 0;
            for (int i = 0; i < 64; ++i) {
                const float c = plain ? std::clamp(std::nearbyint(xg[i] / plain), -8.0f, 7.0f) : 0.0f;
                sse += double(bg[i] - xg[i]) * (bg[i] - xg[i]);
                sse_plain += double(c * plain - xg[i]) * (c * plain - xg[i]);
                // Codes are -8..7 steps of s: every value is reproduced within the clamp range.
                const float code = s ? bg[i] / s : 0.0f;
                ASSERT_GE(code, -8.0001f);
                ASSERT_LE(code, 7.0001f);
            }
            EXPECT_LE(sse, sse_plain * (1 + 1e-6) + 1e-18) << r << "," << j;
            if (j == 0 && r == 0) {
                EXPECT_LT(std::fabs(bg[5] - 0.5f), 0.1f);  // the outlier survives
            }
        }
    // Low nibble holds the even element: element 0 decodes from the low half of byte 0.
    const uint8_t byte0 = q.values.data<uint8_t>()[0];
    EXPECT_FLOAT_EQ(back.data<float>()[0], float(int(byte0 & 15) - 8) * q.scales.data<float>()[0]);
    EXPECT_FLOAT_EQ(back.data<float>()[1], float(int(byte0 >> 4) - 8) * q.scales.data<float>()[0]);
}

TEST(Quantize, BfloatInputAndRowViews) {
    Tensor x = random_rows(4, 128, 3);
    Tensor b = Tensor::empty({4, 128}, DType::bf16);
    convert_from_f32(x.data<float>(), DType::bf16, b.raw(), 512);
    QTensor q = quantize(b, QuantFormat{4, 32});
    QTensor tail = q.rows(2, 4);
    std::vector<float> row(128), full(128);
    dequantize_row(tail, 1, row.data());
    dequantize_row(q, 3, full.data());
    EXPECT_EQ(row, full);
    EXPECT_EQ(tail.describe(), "q4/32[2, 128]");
}

// NaN or infinity must not become ordinary codes (a NaN's int8 cast is undefined, and the max
// ignores it): its group's scale (and zero point) is NaN, the other groups are as before.
TEST(Quantize, AGroupHoldingNaNOrInfinityKeepsANaNScale) {
    const QuantFormat asym{4, 1, 4, true, DType::f16};  // the media keys' layout: columns over blocks of rows
    for (const QuantFormat& f : {QuantFormat{8, 0}, QuantFormat{4, 64}, QuantFormat{4, 64, 1, false, DType::f16}, asym})
        for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
            SCOPED_TRACE(f.name() + " " + std::to_string(bad));
            Tensor x = random_rows(4, 256, 5);
            const QTensor clean = quantize(x, f);
            x.data<float>()[2 * 256 + 70] = bad;  // row 2, second group of 64
            const QTensor q = quantize(x, f);
            const Tensor s = q.scales.to_f32(), cs = clean.scales.to_f32();
            const int64_t bad_scale = f.block > 1 ? 70 : f.group ? 2 * 4 + 1 : 2;  // the scale of that value
            for (int64_t i = 0; i < s.numel(); ++i) {
                if (i == bad_scale) EXPECT_TRUE(std::isnan(s.data<float>()[i]));
                else EXPECT_EQ(s.data<float>()[i], cs.data<float>()[i]) << i;
            }
            if (f.zero_points) EXPECT_TRUE(std::isnan(q.zeros.to_f32().data<float>()[bad_scale]));
            EXPECT_TRUE(std::isnan(dequantize(q).data<float>()[2 * 256 + 70]));
        }
}

TEST(Quantize, RejectsRowsThatDoNotFitTheGroups) {
    Tensor x = random_rows(2, 100, 4);
    EXPECT_FALSE((QuantFormat{4, 64}.fits(100)));
    EXPECT_TRUE((QuantFormat{8, 0}.fits(100)));
    EXPECT_THROW(quantize(x, QuantFormat{4, 64}), Error);
    EXPECT_THROW(quantize(x, QuantFormat{}), Error);
}

TEST(Quantize, ParsesFormats) {
    EXPECT_EQ(parse_quant_format("bf16").bits, 16);
    EXPECT_EQ(parse_quant_format("int8").bits, 8);
    EXPECT_EQ(parse_quant_format("int8").group, 0);
    EXPECT_EQ(parse_quant_format("int4").group, 64);
    EXPECT_EQ(parse_quant_format("int4/g128").group, 128);
    EXPECT_EQ(parse_quant_format("int4/g128").name(), "int4/g128");
    EXPECT_THROW(parse_quant_format("int3"), Error);
    EXPECT_THROW(parse_quant_format("int4/g7"), Error);
    EXPECT_THROW(parse_quant_format("bf16/g64"), Error);
}
