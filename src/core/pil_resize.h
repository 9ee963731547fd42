// Pillow's BICUBIC resize of 8-bit images, bit for bit, and SigLIP's pixel normalisation:
// the front end's image math, shared by the media layer and the backends' frames_to_pixels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vidi {

// PIL's fixed-point resampling coefficients for one axis (Resample.c semantics):
// output i reads `count[i]` inputs from `first[i]` with weights taps[i*ksize + j],
// scaled by 2^22.
struct ResampleAxis {
    int in_size = 0, out_size = 0, ksize = 0;
    std::vector<int> first, count;
    std::vector<int32_t> taps;
};
constexpr int kResamplePrecisionBits = 22;
ResampleAxis pil_bicubic_axis(int in_size, int out_size);
// The axis Pillow applies: bicubic, or where the sizes are equal (Pillow skips that pass)
// one tap of weight 1 per output, which gives the input bytes back.
ResampleAxis pil_resize_axis(int in_size, int out_size);

// PIL-exact bicubic resize of packed uint8 images with 1..4 interleaved channels.
void resize_bicubic_u8(const uint8_t* src, int sw, int sh, int channels, uint8_t* dst, int dw, int dh);
// Same, with a row stride in bytes for the source.
void resize_bicubic_u8(const uint8_t* src, int sw, int sh, size_t src_stride, int channels,
                       uint8_t* dst, int dw, int dh);

// SigLIP normalisation of a packed RGB24 image [S, S, 3] into planar f32 [3, S, S].
void normalize_siglip(const uint8_t* rgb, int size, float* chw);
// n packed RGB24 frames [n, h, w, 3] -> [n, 3, size, size]: resize, then normalize_siglip
// (frames in parallel).
void frames_to_pixels_f32(const uint8_t* rgb, int64_t n, int h, int w, int size, float* out);

}  // namespace vidi
