#include "core/rotate.h"

#include <cstring>

#include "vidi/error.h"

namespace vidi {

void rotate_plane(const uint8_t* src, ptrdiff_t src_stride, int w, int h, int elem, int degrees, uint8_t* dst,
                  ptrdiff_t dst_stride) {
    VIDI_CHECK(w > 0 && h > 0 && elem > 0 && elem <= 16, "rotate_plane: bad plane ", w, "x", h, " of ", elem,
               "-byte elements");
    VIDI_CHECK(degrees == 0 || degrees == 90 || degrees == 180 || degrees == 270,
               "rotate_plane: only quarter turns, got ", degrees, " degrees");
    // Output pixel (x, y) reads source pixel (sx, sy); for a clockwise quarter turn the
    // output's top row is the source's left column read from the bottom up.
    const bool swap = degrees == 90 || degrees == 270;
    const int ow = swap ? h : w, oh = swap ? w : h;
    for (int y = 0; y < oh; ++y) {
        uint8_t* out = dst + y * dst_stride;
        if (degrees == 0 || degrees == 180) {
            const int sy = degrees == 0 ? y : h - 1 - y;
            const uint8_t* row = src + sy * src_stride;
            if (degrees == 0) {
                std::memcpy(out, row, static_cast<size_t>(w) * elem);
                continue;
            }
            for (int x = 0; x < ow; ++x) std::memcpy(out + x * elem, row + (w - 1 - x) * elem, elem);
            continue;
        }
        const int sx = degrees == 90 ? y : w - 1 - y;
        for (int x = 0; x < ow; ++x) {
            const int sy = degrees == 90 ? h - 1 - x : x;
            std::memcpy(out + x * elem, src + sy * src_stride + sx * elem, elem);
        }
    }
}

Tensor rotate_rgb24(const Tensor& rgb, int degrees) {
    VIDI_CHECK(rgb.dtype() == DType::u8 && (rgb.rank() == 3 || rgb.rank() == 4) && rgb.dim(-1) == 3,
               "rotate_rgb24: expected packed RGB24 u8 [h, w, 3] or [n, h, w, 3]");
    const int64_t n = rgb.rank() == 4 ? rgb.dim(0) : 1;
    const int h = static_cast<int>(rgb.dim(-3)), w = static_cast<int>(rgb.dim(-2));
    const bool swap = degrees == 90 || degrees == 270;
    const int oh = swap ? w : h, ow = swap ? h : w;
    Tensor out = rgb.rank() == 4 ? Tensor::empty({n, oh, ow, 3}, DType::u8) : Tensor::empty({oh, ow, 3}, DType::u8);
    const size_t frame = static_cast<size_t>(h) * w * 3;
    for (int64_t i = 0; i < n; ++i)
        rotate_plane(rgb.data<uint8_t>() + i * frame, w * 3, w, h, 3, degrees, out.data<uint8_t>() + i * frame,
                     ow * 3);
    return out;
}

}  // namespace vidi
