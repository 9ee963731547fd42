// FrameStream's output to device memory (NVDEC, or the CPU decoders' lanes): decoding lanes
// write each sampled frame into its batch's slot of a DeviceFrames ring (core/device_frames.h)
// as soon as it is decoded, and the reader takes whole batches from it. Frames are placed by
// their ordinal in the order the reader gets them (FrameStream's, the sampled position unless
// the first batches interleave the lanes' segments): ordinal o belongs to batch o / batch,
// which lives in slot (o / batch) % slots; a lane waits before writing a batch more than
// `slots` batches ahead of the reader, and the reader waits until every frame of its batch is
// written, whichever lanes write them. Internal to the media layer.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/device_frames.h"
#include "media/decode_cursor.h"
#include "media/media.h"

namespace vidi::media {

class DeviceWriter {
public:
    // hardware: the lanes decode with NVDEC (a CUDA device context each, on the lane's
    // stream), but for the shape's host lanes; false: in software, the frames converted on the
    // host (tests, fallbacks).
    DeviceWriter(std::unique_ptr<DeviceFrames> frames, const VideoIndex& vx, const std::string& path, bool hardware);
    ~DeviceWriter();
    DeviceWriter(const DeviceWriter&) = delete;
    DeviceWriter& operator=(const DeviceWriter&) = delete;

    int lanes() const { return frames_->shape().lanes; }
    int batch() const { return frames_->shape().batch; }
    // The CUDA device context a lane's decoders use (null: decode in software).
    AVBufferRef* hw_device(int lane) const;

    // --- a decoding lane ---
    // Frame `ordinal` := the cursor's current frame: converted on the GPU where the kernel
    // models swscale's path for it, else by swscale on the host (core/yuv_rgb.h). Waits while
    // its batch is too far ahead of the reader; throws once cancel() was called.
    void write(int lane, size_t ordinal, DecodeCursor& c);

    // --- the reader ---
    // Waits until batch `b` holds n frames (true), or until give_up() says so (false): it is
    // asked under the writer's lock at every frame written and at every nudge().
    bool wait_filled(size_t b, int64_t n, const std::function<bool()>& give_up);
    bool filled(size_t b, int64_t n);  // without waiting
    // Wakes wait_filled() to ask give_up() again (a lane failed).
    void nudge();
    // Batch `b`'s first n frames, u8 [n, h, w, 3] on the device (every one written).
    Tensor take(size_t b, int64_t n);
    // The work queued on the batch so far is the last; its slot may take a later batch.
    void release(size_t b);
    // Lanes waiting for room give up (the stream is going away).
    void cancel();

private:
    struct Lane {
        bool planned = false;  // `plan` is for frames of `color` and `bits` (nullopt: not modelled)
        YuvColor color;
        int bits = 0;
        std::optional<YuvToRgb> plan;
    };
    int open_slot(int lane, size_t b);  // waits for room for batch b; its slot
    void convert(int lane, int slot, int index, DecodeCursor& c);  // the cursor's frame into the slot
    const YuvToRgb* plan_for(Lane& l, const AVFrame* f, AVPixelFormat sw_format, int bits);

    std::unique_ptr<DeviceFrames> frames_;
    const VideoIndex& vx_;
    std::string path_;
    std::vector<ff::BufferPtr> devices_;  // per lane (empty: software decoding)
    std::vector<Lane> lanes_;
    const bool x86_;
    std::mutex mu_;
    std::condition_variable room_;     // lanes waiting for a slot (release, cancel)
    std::condition_variable written_;  // the reader waiting for a batch (write, nudge)
    size_t released_ = 0;  // batches the reader is done with
    std::vector<int64_t> filled_;  // per slot: frames written into its batch
    bool cancelled_ = false;
};

}  // namespace vidi::media
