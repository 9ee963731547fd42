#include "media/device_writer.h"

#include <algorithm>

#include "media/nvdec.h"
#include "media/rgb_picture.h"

namespace vidi::media {

namespace {
bool same_color(const YuvColor& a, const YuvColor& b) {
    return a.coefficients == b.coefficients && a.full_range == b.full_range && a.brightness == b.brightness &&
           a.contrast == b.contrast && a.saturation == b.saturation;
}
}  // namespace

DeviceWriter::DeviceWriter(std::unique_ptr<DeviceFrames> frames, const VideoIndex& vx, const std::string& path,
                           bool hardware)
    : frames_(std::move(frames)), vx_(vx), path_(path), lanes_(static_cast<size_t>(frames_->shape().lanes)),
      x86_(swscale_x86_simd()) {
    const DeviceFramesShape& s = frames_->shape();
    filled_.assign(static_cast<size_t>(std::max(1, s.slots)), 0);
    VIDI_CHECK(s.slots >= 3 && s.batch > 0 && s.lanes_valid() && s.width == vx.info.width &&
                   s.height == vx.info.height,
               "DeviceWriter: a frame ring of ", s.slots, " slots of ", s.batch, " ", s.width, "x", s.height,
               " frames, ", s.lanes, " lanes (", s.host_lanes, " on the CPU) does not fit '", path, "'");
    if (hardware)  // the host lanes, the last ones, decode in software
        for (int lane = 0; lane < s.device_decoders(); ++lane)
            devices_.push_back(nvdec_device(frames_->device_ordinal(), frames_->cuda_context(), frames_->lane_stream(lane)));
}

DeviceWriter::~DeviceWriter() { cancel(); }

AVBufferRef* DeviceWriter::hw_device(int lane) const {
    return static_cast<size_t>(lane) < devices_.size() ? devices_[static_cast<size_t>(lane)].get() : nullptr;
}

int DeviceWriter::open_slot(int lane, size_t b) {
    const size_t slots = static_cast<size_t>(frames_->shape().slots);
    {
        std::unique_lock<std::mutex> lock(mu_);
        room_.wait(lock, [&] { return cancelled_ || b < released_ + slots; });
        if (cancelled_) fail("'", path_, "': decoding stopped");
    }
    const int slot = static_cast<int>(b % slots);
    frames_->begin_slot(lane, slot);
    return slot;
}

const YuvToRgb* DeviceWriter::plan_for(Lane& l, const AVFrame* f, AVPixelFormat sw_format, int bits) {
    const YuvColor color = frame_color(f, sw_format);
    if (!l.planned || !same_color(l.color, color) || l.bits != bits) {
        l.plan = plan_yuv_to_rgb(color, bits, vx_.info.width, vx_.info.height, x86_);
        l.color = color;
        l.bits = bits;
        l.planned = true;
    }
    return l.plan ? &*l.plan : nullptr;
}

void DeviceWriter::write(int lane, size_t ordinal, DecodeCursor& c) {
    const size_t per = static_cast<size_t>(batch());
    const int slot = open_slot(lane, ordinal / per);
    convert(lane, slot, static_cast<int>(ordinal % per), c);
    // Each frame is its own write, as a lane's next frame may go to another batch
    // (interleaved ordinals): the reader's take() waits on the device for the last one.
    frames_->end_slot(lane, slot);
    {
        std::lock_guard<std::mutex> lock(mu_);
        ++filled_[static_cast<size_t>(slot)];
    }
    written_.notify_all();
}

void DeviceWriter::convert(int lane, int slot, int index, DecodeCursor& c) {
    Lane& l = lanes_[static_cast<size_t>(lane)];
    const AVFrame* f = c.frame();
    YuvPlanes planes;
    int bits = 0;
    // On the GPU where the kernel does what swscale does: frames NVDEC left on the device at
    // the stream's first size, on a path core/yuv_rgb.h models. Anything else (a later size
    // that swscale scales, an odd width on its scaler, a frame FFmpeg decoded in software)
    // is converted by swscale on the host and copied up.
    if (cuda_frame_planes(f, c.software_format(), planes, bits) && f->width == vx_.coded_width &&
        f->height == vx_.coded_height)
        if (const YuvToRgb* plan = plan_for(l, f, c.software_format(), bits)) {
            frames_->convert(lane, planes, *plan, vx_.info.rotation, slot, index);
            return;
        }
    Picture p = c.picture();
    frames_->put_host(lane, p.rgb.data(), p.stride, slot, index);  // copied when it returns
    c.recycle(std::move(p));
}

bool DeviceWriter::filled(size_t b, int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    return filled_[b % filled_.size()] >= n;
}

bool DeviceWriter::wait_filled(size_t b, int64_t n, const std::function<bool()>& give_up) {
    std::unique_lock<std::mutex> lock(mu_);
    bool full = false;
    written_.wait(lock, [&] { return (full = filled_[b % filled_.size()] >= n) || give_up(); });
    return full;
}

void DeviceWriter::nudge() {
    { std::lock_guard<std::mutex> lock(mu_); }  // a waiter between its check and its sleep sees the change
    written_.notify_all();
}

Tensor DeviceWriter::take(size_t b, int64_t n) {
    return frames_->take(static_cast<int>(b % static_cast<size_t>(frames_->shape().slots)), n);
}

void DeviceWriter::release(size_t b) {
    const size_t slot = b % filled_.size();
    frames_->release(static_cast<int>(slot));
    {
        std::lock_guard<std::mutex> lock(mu_);
        filled_[slot] = 0;  // before any lane may write the slot's next batch
        released_ = b + 1;
    }
    room_.notify_all();
}

void DeviceWriter::cancel() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        cancelled_ = true;
    }
    room_.notify_all();
}

}  // namespace vidi::media
