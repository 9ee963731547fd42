// PIL-exact bicubic resize against outputs Pillow computed (tools/pil_reference.py),
// byte for byte, plus properties of the coefficient tables.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "io/safetensors.h"
#include "media/media.h"

namespace vidi::media {
namespace {

// tools/pil_reference.py make_image, in C++.
std::vector<uint8_t> make_image(int w, int h, int ch, uint32_t seed) {
    std::vector<uint8_t> img(static_cast<size_t>(w) * h * ch);
    for (uint32_t y = 0; y < static_cast<uint32_t>(h); ++y)
        for (uint32_t x = 0; x < static_cast<uint32_t>(w); ++x)
            for (uint32_t c = 0; c < static_cast<uint32_t>(ch); ++c) {
                uint32_t hs = (x * 73856093u) ^ (y * 19349663u) ^ (c * 83492791u) ^ (seed * 2654435761u);
                hs ^= hs >> 13;
                hs *= 0x5BD1E995u;
                hs ^= hs >> 15;
                const uint32_t noise = hs & 255u, ramp = (x * 5u + y * 3u + c * 60u) & 255u;
                img[(static_cast<size_t>(y) * w + x) * ch + c] = static_cast<uint8_t>(((x ^ y) & 8u) ? noise : ramp);
            }
    return img;
}

std::string reference_path() { return std::string(VIDI_SOURCE_DIR) + "/tests/data/media/pil_bicubic_reference.safetensors"; }

TEST(PilResize, MatchesPillowBitExact) {
    const auto ref = io::SafetensorsFile::open(reference_path());
    ASSERT_TRUE(ref->metadata().count("pillow_version"));
    int cases = 0;
    for (const auto& [name, ti] : ref->tensors()) {
        std::istringstream meta(ref->metadata().at(name));
        int sw, sh, ch, dw, dh, seed;
        char sep;
        meta >> sw >> sep >> sh >> sep >> ch >> sep >> dw >> sep >> dh >> sep >> seed;
        ASSERT_TRUE(meta) << "bad metadata for " << name;
        const std::vector<uint8_t> src = make_image(sw, sh, ch, static_cast<uint32_t>(seed));
        std::vector<uint8_t> out(static_cast<size_t>(dw) * dh * ch);
        resize_bicubic_u8(src.data(), sw, sh, ch, out.data(), dw, dh);
        const Tensor want = ref->get(name);
        ASSERT_EQ(want.nbytes(), out.size()) << name;
        size_t mismatches = 0, first = out.size();
        for (size_t i = 0; i < out.size(); ++i)
            if (out[i] != want.data<uint8_t>()[i]) {
                ++mismatches;
                first = std::min(first, i);
            }
        EXPECT_EQ(mismatches, 0u) << name << " " << sw << "x" << sh << "x" << ch << " -> " << dw << "x" << dh
                                  << ", first at byte " << first;
        ++cases;
    }
    EXPECT_GE(cases, 8);
}

TEST(PilResize, StrideAndIdentity) {
    const std::vector<uint8_t> src = make_image(37, 19, 3, 7);
    // Same image behind a padded stride gives the same result.
    std::vector<uint8_t> padded(static_cast<size_t>(19) * 128, 0xAB);
    for (int y = 0; y < 19; ++y) std::copy_n(src.data() + y * 37 * 3, 37 * 3, padded.data() + y * 128);
    std::vector<uint8_t> a(64 * 48 * 3), b(64 * 48 * 3);
    resize_bicubic_u8(src.data(), 37, 19, 3, a.data(), 64, 48);
    resize_bicubic_u8(padded.data(), 37, 19, 128, 3, b.data(), 64, 48);
    EXPECT_EQ(a, b);
    std::vector<uint8_t> same(src.size());
    resize_bicubic_u8(src.data(), 37, 19, 3, same.data(), 37, 19);
    EXPECT_EQ(same, src);
}

TEST(PilResize, CoefficientsSumToOneAndWidenWhenShrinking) {
    for (auto [in, out] : {std::pair{1280, 384}, {240, 384}, {17, 384}, {384, 384}, {5, 1}}) {
        const ResampleAxis ax = pil_bicubic_axis(in, out);
        const double scale = std::max(1.0, static_cast<double>(in) / out);
        EXPECT_EQ(ax.ksize, static_cast<int>(std::ceil(2.0 * scale)) * 2 + 1);
        for (int i = 0; i < out; ++i) {
            int64_t sum = 0;
            for (int j = 0; j < ax.count[i]; ++j) sum += ax.taps[static_cast<size_t>(i) * ax.ksize + j];
            // Each tap is rounded separately: the sum is 2^22 within one unit per tap.
            EXPECT_NEAR(static_cast<double>(sum), 1 << kResamplePrecisionBits, ax.count[i]) << in << "->" << out;
            EXPECT_GE(ax.first[i], 0);
            EXPECT_LE(ax.first[i] + ax.count[i], in);
        }
    }
}

TEST(PilResize, RejectsBadArguments) {
    uint8_t px[3] = {1, 2, 3}, out[3];
    EXPECT_THROW(resize_bicubic_u8(px, 1, 1, 5, out, 1, 1), Error);
    EXPECT_THROW(resize_bicubic_u8(px, 0, 1, 3, out, 1, 1), Error);
    EXPECT_THROW(resize_bicubic_u8(px, 1, 1, 3, out, 1, -1), Error);
}

TEST(SiglipNormalize, MapsByteRangeToMinusOneOne) {
    uint8_t rgb[2 * 2 * 3] = {0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    float chw[12];
    normalize_siglip(rgb, 2, chw);
    EXPECT_FLOAT_EQ(chw[0], -1.0f);                                        // R of pixel 0
    EXPECT_FLOAT_EQ(chw[4], 1.0f);                                         // G of pixel 0
    EXPECT_FLOAT_EQ(chw[8], static_cast<float>((128 / 255.0 - 0.5) / 0.5));  // B of pixel 0
    EXPECT_FLOAT_EQ(chw[1], static_cast<float>((1 / 255.0 - 0.5) / 0.5));    // R of pixel 1
}

}  // namespace
}  // namespace vidi::media
