// Upright frames on every backend: the media layer turns frames before they are handed on
// (core/rotate.h), and a backend's frames_to_pixels of frames turned that way equals the
// host's resize of the same pictures turned by index arithmetic (rounded as the backend
// stores it), for every quarter turn and frame shapes whose sides swap (SPEC §2.2;
// docs/conformance.md, "rotation").
#include <cstring>

#include "backend/backend_test.h"
#include "core/pil_resize.h"
#include "core/rotate.h"

using namespace vidi;
using namespace vidi::test;

namespace {

// Frame `f` of packed RGB24 [n, h, w, 3] turned clockwise by `degrees`, pixel by pixel.
Tensor turned_by_index(const Tensor& rgb, int degrees) {
    const int64_t n = rgb.dim(0);
    const int h = static_cast<int>(rgb.dim(1)), w = static_cast<int>(rgb.dim(2));
    const bool swap = degrees % 180 != 0;
    const int oh = swap ? w : h, ow = swap ? h : w;
    Tensor out = Tensor::empty({n, oh, ow, 3}, DType::u8);
    for (int64_t f = 0; f < n; ++f)
        for (int y = 0; y < oh; ++y)
            for (int x = 0; x < ow; ++x) {
                const int sx = degrees == 90 ? y : degrees == 180 ? w - 1 - x : degrees == 270 ? w - 1 - y : x;
                const int sy = degrees == 90 ? h - 1 - x : degrees == 180 ? h - 1 - y : degrees == 270 ? x : y;
                std::memcpy(out.data<uint8_t>() + ((f * oh + y) * ow + x) * 3,
                            rgb.data<uint8_t>() + ((f * h + sy) * w + sx) * 3, 3);
            }
    return out;
}

class Rotation : public BackendTest {};

TEST_P(Rotation, FramesToPixelsOfTurnedFramesEqualsThePicturesTurned) {
    struct Case {
        int64_t n;
        int h, w;
    } cases[] = {{2, 1080, 1920}, {3, 61, 97}, {1, 384, 200}};
    std::uniform_int_distribution<int> byte(0, 255);
    for (const Case& c : cases) {
        Tensor rgb = Tensor::empty({c.n, c.h, c.w, 3}, DType::u8);
        for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(byte(rng()));
        for (int degrees : {90, 180, 270}) {
            const Tensor turned = rotate_rgb24(rgb, degrees), want = turned_by_index(rgb, degrees);
            ASSERT_EQ(turned.shape(), want.shape());
            ASSERT_EQ(std::memcmp(turned.raw(), want.raw(), want.nbytes()), 0) << degrees;
            const int S = 384;
            Tensor host = Tensor::empty({c.n, 3, S, S}, DType::f32);
            frames_to_pixels_f32(want.data<uint8_t>(), c.n, static_cast<int>(want.dim(1)), static_cast<int>(want.dim(2)),
                                 S, host.data<float>());
            const Tensor out = be().frames_to_pixels(turned, S);
            ASSERT_EQ(out.shape(), (Shape{c.n, 3, S, S}));
            expect_equal(out, stored(values(host)), cat("frames_to_pixels of ", c.h, "x", c.w, " turned ", degrees));
        }
    }
}

}  // namespace

VIDI_BACKEND_SUITE(Rotation);
