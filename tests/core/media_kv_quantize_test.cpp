// 4-bit media K/V formats of the host quantiser (the reference for the GPU's): keys per
// channel over blocks of tokens with zero points, values per token in groups, f16 scales;
// round trips within half a step, the layout of codes and scales, blocks that end early,
// and the f16 scales' saturation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "core/quantize.h"

using namespace vidi;

namespace {

// [T, KV, hd] with an outlier channel per head (a large offset) and values of mixed size.
Tensor keys_with_outliers(int64_t T, int64_t KV, int64_t hd, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, 1.0f);
    Tensor x = Tensor::empty({T, KV, hd}, DType::f32);
    float* p = x.data<float>();
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < KV; ++h)
            for (int64_t d = 0; d < hd; ++d) p[(t * KV + h) * hd + d] = (d == 3 ? 20.0f + 3 * n(rng) : n(rng));
    return x;
}

float at(const Tensor& t, int64_t i) {
    return t.dtype() == DType::f16 ? f16_to_f32(static_cast<const uint16_t*>(t.raw())[i]) : t.data<float>()[i];
}

}  // namespace

TEST(MediaKvFormat, KeysPerChannelValuesPerTokenF16Scales) {
    const MediaKvFormat f = media_kv_format(4, 256);
    EXPECT_EQ(f.key.group, 1);
    EXPECT_EQ(f.key.block, kMediaKeyBlock);
    EXPECT_TRUE(f.key.zero_points);
    EXPECT_EQ(f.key.scale_dtype, DType::f16);
    EXPECT_EQ(f.value.group, 64);
    EXPECT_EQ(f.value.block, 1);
    EXPECT_FALSE(f.value.zero_points);
    EXPECT_EQ(media_kv_format(4, 32).value.group, 16);  // two groups a head up to 128, four above
    EXPECT_EQ(media_kv_format(4, 128).value.group, 64);
    EXPECT_EQ(media_kv_format(4, 192).value.group, 48);
    EXPECT_EQ(media_kv_format(8, 256).key.name(), "int8");
    EXPECT_FALSE(media_kv_format(16, 256).key.quantized());
    EXPECT_THROW(media_kv_format(4, 40), Error);   // not a multiple of 16
    EXPECT_THROW(media_kv_format(4, 144), Error);  // above 128: not a multiple of 32
    EXPECT_THROW(media_kv_format(5, 256), Error);
    // Bytes of an hour's stream per layer and side: codes plus 2-byte scales (and zeros).
    const int64_t T = 126000;
    EXPECT_EQ(f.key.bytes({T, 8, 256}), size_t(T * 8 * 128 + (T + 127) / 128 * 8 * 256 * 4));
    EXPECT_EQ(f.value.bytes({T, 8, 256}), size_t(T * 8 * 128 + T * 8 * 4 * 2));
}

TEST(MediaKvQuantize, KeysPerChannelRoundTripWithinHalfAStep) {
    const int64_t T = 300, KV = 2, hd = 32;  // 300 tokens: two full blocks and one of 44
    const Tensor x = keys_with_outliers(T, KV, hd, 1);
    const QuantFormat f = media_kv_format(4, hd).key;
    const QTensor q = quantize(x, f);
    ASSERT_EQ(q.values.shape(), (Shape{T, KV, hd / 2}));
    ASSERT_EQ(q.scales.shape(), (Shape{3, KV, hd}));
    ASSERT_EQ(q.scales.dtype(), DType::f16);
    ASSERT_TRUE(q.zeros.defined());
    EXPECT_EQ(q.block, kMediaKeyBlock);
    const Tensor back = dequantize(q);
    const float *xp = x.data<float>(), *bp = back.data<float>();
    for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < KV * hd; ++c) {
            const int64_t s = (t / kMediaKeyBlock) * KV * hd + c;
            const float scale = at(q.scales, s), lo = at(q.zeros, s);
            const float want = xp[t * KV * hd + c], got = bp[t * KV * hd + c];
            // Half a step, plus what rounding the zero point to f16 moved.
            ASSERT_LE(std::fabs(got - want), 0.5f * scale + std::fabs(lo) * 1e-3f + 1e-6f) << t << "," << c;
        }
    // The outlier channel keeps its own range: its step is set by its spread, not by 20.
    const float outlier_step = at(q.scales, 3), plain_step = at(q.scales, 4);
    EXPECT_LT(outlier_step, 3.0f);
    EXPECT_GT(outlier_step, plain_step);
}

TEST(MediaKvQuantize, ValuesPerTokenGroupsMatchTheWeightQuantiserUpToScaleRounding) {
    const Tensor x = keys_with_outliers(50, 4, 128, 2);
    const QTensor q = quantize(x, media_kv_format(4, 128).value);
    ASSERT_EQ(q.scales.shape(), (Shape{50, 4, 2}));
    ASSERT_FALSE(q.zeros.defined());
    const Tensor back = dequantize(q);
    for (int64_t i = 0; i < x.numel(); ++i) {
        // Half a step, or what clamping left of a value past the codes (the scale search may
        // trade the extreme for finer steps).
        const float scale = std::fabs(at(q.scales, i / 64)), v = x.data<float>()[i];
        const float bound = std::max(0.5f * scale * 1.001f, std::fabs(v) - 7.0f * scale) + 1e-6f;
        ASSERT_LE(std::fabs(back.data<float>()[i] - v), bound) << i;
    }
    // With f32 scales the same layout is the weight quantiser's int4/g64, code for code.
    QuantFormat f32 = media_kv_format(4, 128).value;
    f32.scale_dtype = DType::f32;
    const QTensor w = quantize(x.reshape({200, 128}), QuantFormat{4, 64});
    const QTensor v = quantize(x, f32);
    ASSERT_EQ(w.values.nbytes(), v.values.nbytes());
    EXPECT_TRUE(std::equal(static_cast<const uint8_t*>(w.values.raw()),
                           static_cast<const uint8_t*>(w.values.raw()) + w.values.nbytes(),
                           static_cast<const uint8_t*>(v.values.raw())));
}

TEST(MediaKvQuantize, QuantisingBlockByBlockEqualsTheWhole) {
    // The media K/V are written in chunks as tokens arrive: whole blocks give the same codes.
    const Tensor x = keys_with_outliers(384, 2, 32, 3);
    const QuantFormat f = media_kv_format(4, 32).key;
    const QTensor whole = quantize(x, f);
    const QTensor second = quantize(x.rows(128, 384), f);
    const QTensor part = whole.rows(128, 384);
    ASSERT_EQ(part.scales.shape(), second.scales.shape());
    EXPECT_EQ(std::memcmp(part.values.raw(), second.values.raw(), part.values.nbytes()), 0);
    EXPECT_EQ(std::memcmp(part.scales.raw(), second.scales.raw(), part.scales.nbytes()), 0);
    EXPECT_EQ(std::memcmp(part.zeros.raw(), second.zeros.raw(), part.zeros.nbytes()), 0);
    EXPECT_THROW(whole.rows(100, 200), Error);  // not on a block boundary
}

TEST(MediaKvQuantize, ConstantChannelsAndHugeValuesStayFinite) {
    Tensor x = Tensor::empty({130, 1, 16}, DType::f32);
    float* p = x.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = 0.75f;  // constant channels: scale 0, exact
    p[129 * 16 + 5] = 1e9f;                                 // beyond f16: the scale saturates
    for (const QuantFormat& f : {media_kv_format(4, 16).key, media_kv_format(4, 16).value}) {
        const Tensor back = dequantize(quantize(x, f));
        for (int64_t i = 0; i < back.numel(); ++i) ASSERT_TRUE(std::isfinite(back.data<float>()[i])) << f.name() << " " << i;
        EXPECT_EQ(back.data<float>()[0], 0.75f) << f.name();
    }
    EXPECT_EQ(round_scale(1e9f, DType::f16), 65504.0f);
    EXPECT_EQ(round_scale(-1e9f, DType::f16), -65504.0f);
    EXPECT_EQ(round_scale(1e9f, DType::f32), 1e9f);
}
