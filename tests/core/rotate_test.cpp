// Quarter turns of planes and RGB24 frames (core/rotate.h) against the definition: output
// (x, y) of a clockwise turn by 90 is input (y, h-1-x), by 180 (w-1-x, h-1-y), by 270 (w-1-y, x).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/rotate.h"
#include "vidi/error.h"

using namespace vidi;

namespace {

// The source pixel that output (x, y) of a clockwise turn shows.
void source_of(int degrees, int w, int h, int x, int y, int& sx, int& sy) {
    switch (degrees) {
    case 90: sx = y, sy = h - 1 - x; break;
    case 180: sx = w - 1 - x, sy = h - 1 - y; break;
    case 270: sx = w - 1 - y, sy = x; break;
    default: sx = x, sy = y;
    }
}

}  // namespace

TEST(Rotate, PlanesOfAnyElementSizeAndStride) {
    for (int elem : {1, 2, 3, 4}) {
        const int w = 7, h = 4, src_stride = w * elem + 5;  // padded rows
        std::vector<uint8_t> src(static_cast<size_t>(src_stride) * h);
        for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 37 + 11);
        for (int degrees : {0, 90, 180, 270}) {
            const bool swap = degrees % 180 != 0;
            const int ow = swap ? h : w, oh = swap ? w : h, dst_stride = ow * elem + 3;
            std::vector<uint8_t> dst(static_cast<size_t>(dst_stride) * oh, 0);
            rotate_plane(src.data(), src_stride, w, h, elem, degrees, dst.data(), dst_stride);
            for (int y = 0; y < oh; ++y)
                for (int x = 0; x < ow; ++x) {
                    int sx = 0, sy = 0;
                    source_of(degrees, w, h, x, y, sx, sy);
                    EXPECT_EQ(std::memcmp(dst.data() + y * dst_stride + x * elem,
                                          src.data() + sy * src_stride + sx * elem, elem),
                              0)
                        << elem << "-byte elements, " << degrees << " degrees, output (" << x << ", " << y << ")";
                }
        }
    }
}

TEST(Rotate, Rgb24FramesAndTheirBatches) {
    Tensor rgb = Tensor::empty({2, 3, 5, 3}, DType::u8);
    for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(i);
    const Tensor quarter = rotate_rgb24(rgb, 90);
    ASSERT_EQ(quarter.shape(), (Shape{2, 5, 3, 3}));
    // Frame 1's top-left output pixel is its bottom-left input pixel.
    EXPECT_EQ(std::memcmp(quarter.row(1).data<uint8_t>(), rgb.row(1).data<uint8_t>() + (2 * 5 + 0) * 3, 3), 0);
    // Four quarter turns give the frames back; a half turn is two quarter turns.
    Tensor back = rgb;
    for (int i = 0; i < 4; ++i) back = rotate_rgb24(back, 90);
    EXPECT_EQ(std::memcmp(back.raw(), rgb.raw(), rgb.nbytes()), 0);
    const Tensor half = rotate_rgb24(rgb, 180), twice = rotate_rgb24(quarter, 90);
    ASSERT_EQ(half.shape(), twice.shape());
    EXPECT_EQ(std::memcmp(half.raw(), twice.raw(), half.nbytes()), 0);
    const Tensor single = rotate_rgb24(rgb.row(0), 270);
    EXPECT_EQ(single.shape(), (Shape{5, 3, 3}));
}

TEST(Rotate, RefusesWhatIsNotAQuarterTurnOfRgb24) {
    Tensor rgb = Tensor::empty({2, 2, 3}, DType::u8);
    EXPECT_THROW(rotate_rgb24(rgb, 45), Error);
    EXPECT_THROW(rotate_rgb24(Tensor::empty({2, 2, 4}, DType::u8), 90), Error);
    EXPECT_THROW(rotate_rgb24(Tensor::empty({2, 2, 3}, DType::f32), 90), Error);
}
