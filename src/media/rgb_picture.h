// Decoded frames to the RGB24 pictures decord hands out: upright, at the stream's first size,
// converted as decord's filter graph converts them (the transpose filter on the planes, then
// one swscale pass). Internal to the media layer; the NVDEC path converts the same way on the
// GPU (core/yuv_rgb.h) and through here where its kernel does not model swscale.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/yuv_rgb.h"
#include "media/video_index.h"

struct SwsContext;

namespace vidi::media {

// Allocates like std::allocator but leaves what a resize adds uninitialised: swscale writes
// every byte of a picture that is read, so zeroing each fresh 2.8 MB buffer first was wasted
// (memset fell from 4.2% to 1.8% of the frames stage's CPU samples; bench/RESULTS.md).
template <class T>
struct UninitializedAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitializedAllocator<U>;
    };
    UninitializedAllocator() = default;
    template <class U>
    UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;  // default-initialised: no value written
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};
using PictureBytes = std::vector<uint8_t, UninitializedAllocator<uint8_t>>;

// A decoded frame as decord hands it out: upright, at the stream's first size, RGB24 (rows
// padded to 64 bytes).
struct Picture {
    PictureBytes rgb;
    int width = 0, height = 0, stride = 0;
};

// Buffers of pictures that were used, for a stream's next pictures. A 720p picture is 2.8 MB:
// freed, such buffers went back to the system and came back paying their page faults again,
// which with the batches' own zeroing and faults took 44% of the CPU time of decoding a 720p
// video (bench/RESULTS.md). Thread-safe; what it is given back stays until it goes (a
// FrameStream owns one), so it holds about as much as the pictures alive at one time.
class PictureBuffers {
public:
    // A buffer of `bytes` bytes, contents unspecified (a recycled one, or a new one).
    PictureBytes take(size_t bytes);
    void give_back(Picture&& p);

private:
    std::mutex mu_;
    std::vector<PictureBytes> free_;
};

// A picture of w x h, its contents unspecified; its buffer from `buffers` when given.
Picture blank_picture(int w, int h, PictureBuffers* buffers = nullptr);

// The frame's planes turned clockwise by `degrees`, then scaled to the stream's (upright)
// size and converted to RGB24 by swscale (SWS_BILINEAR), with the frame's own matrix and range.
class RgbConverter {
public:
    // buffers: where the pictures' memory comes from (null: fresh buffers).
    explicit RgbConverter(PictureBuffers* buffers = nullptr) : buffers_(buffers) {}
    ~RgbConverter();
    RgbConverter(const RgbConverter&) = delete;
    RgbConverter& operator=(const RgbConverter&) = delete;

    // f: a software frame; vx: the stream it belongs to (size, rotation); path names errors.
    Picture convert(const AVFrame* f, const VideoIndex& vx, const std::string& path);
    // Hands a picture's memory back to the buffers (dropped when there are none).
    void recycle(Picture&& p) {
        if (buffers_) buffers_->give_back(std::move(p));
    }

private:
    // The frame's planes turned clockwise by `degrees` (into upright_), as the transpose filter does.
    const AVFrame* turn_planes(const AVFrame* f, int degrees, const std::string& path);

    PictureBuffers* buffers_ = nullptr;
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
