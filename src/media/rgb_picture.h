// Decoded frames to the RGB24 pictures decord hands out: upright, at the stream's first size,
// converted as decord's filter graph converts them (the transpose filter on the planes, then
// one swscale pass). Internal to the media layer; the NVDEC path converts the same way on the
// GPU (core/yuv_rgb.h) and through here where its kernel does not model swscale.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/yuv_rgb.h"
#include "media/video_index.h"

struct SwsContext;

namespace vidi::media {

// A decoded frame as decord hands it out: upright, at the stream's first size, RGB24 (rows
// padded to 64 bytes).
struct Picture {
    std::vector<uint8_t> rgb;
    int width = 0, height = 0, stride = 0;
};
Picture blank_picture(int w, int h);

// The frame's planes turned clockwise by `degrees`, then scaled to the stream's (upright)
// size and converted to RGB24 by swscale (SWS_BILINEAR), with the frame's own matrix and range.
class RgbConverter {
public:
    RgbConverter() = default;
    ~RgbConverter();
    RgbConverter(const RgbConverter&) = delete;
    RgbConverter& operator=(const RgbConverter&) = delete;

    // f: a software frame; vx: the stream it belongs to (size, rotation); path names errors.
    Picture convert(const AVFrame* f, const VideoIndex& vx, const std::string& path);

private:
    // The frame's planes turned clockwise by `degrees` (into upright_), as the transpose filter does.
    const AVFrame* turn_planes(const AVFrame* f, int degrees, const std::string& path);

    SwsContext* sws_ = nullptr;
    ff::FramePtr upright_;
};

// The colour parameters convert() gives swscale for a frame whose decoder outputs `format`
// in software: the frame's matrix (sws_getCoefficients), its range where it states one,
// else swscale's default for the format (full for the yuvj formats).
YuvColor frame_color(const AVFrame* f, AVPixelFormat format);

// Whether swscale runs its x86 SIMD converters here (core/yuv_rgb.h's `x86`).
bool swscale_x86_simd();

}  // namespace vidi::media
