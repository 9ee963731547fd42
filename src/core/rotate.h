// Quarter-turn rotations of pictures: how the media layer turns frames upright (a stream's
// display matrix or `rotate` tag), as pure functions over bytes so that every backend and
// test can call them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vidi/tensor.h"

namespace vidi {

// Rotates a w×h plane of `elem`-byte elements clockwise by `degrees` (0, 90, 180 or 270)
// into dst, which holds h×w elements for 90/270 and w×h for 0/180. Strides are in bytes.
void rotate_plane(const uint8_t* src, ptrdiff_t src_stride, int w, int h, int elem, int degrees, uint8_t* dst,
                  ptrdiff_t dst_stride);

// Packed RGB24 frames u8 [h, w, 3] or [n, h, w, 3], each turned clockwise by `degrees`.
Tensor rotate_rgb24(const Tensor& rgb, int degrees);

}  // namespace vidi
