#include "core/host_frames.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "vidi/error.h"

namespace vidi {

HostFrames::HostFrames(const DeviceFramesShape& shape)
    : shape_(shape), state_(static_cast<size_t>(std::max(0, shape.slots))),
      lane_frames_(static_cast<size_t>(std::max(0, shape.lanes))) {
    VIDI_CHECK(shape.slots > 0 && shape.batch > 0 && shape.width > 0 && shape.height > 0 && shape.lanes_valid(),
               "host frames: a ring of ", shape.slots, " slots of ", shape.batch, " ", shape.width, "x", shape.height,
               " frames, ", shape.lanes, " lanes (", shape.host_lanes, " on the CPU)");
}

void HostFrames::begin_slot(int, int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_.at(size_t(slot)).held) ++violations;
    ++state_[size_t(slot)].writing;
}

void HostFrames::convert(int lane, const YuvPlanes& planes, const YuvToRgb& plan, int rotation, int slot, int index) {
    pass_gate(lane);
    yuv_to_rgb24(plan, planes, rotation, frame(slot, index), shape_.width * 3);
    count(lane);
}

void HostFrames::put_host(int lane, const uint8_t* rgb, ptrdiff_t pitch, int slot, int index) {
    if (fail_at >= 0 && frames_put.load() >= fail_at) fail("host frames: the copy failed (as asked: fail_at)");
    if (lane == fail_lane) fail("host frames: lane ", lane, "'s copy failed (as asked: fail_lane)");
    pass_gate(lane);
    uint8_t* dst = frame(slot, index);
    const size_t row = size_t(shape_.width) * 3;
    for (int y = 0; y < shape_.height; ++y) std::memcpy(dst + size_t(y) * row, rgb + y * pitch, row);
    ++frames_put;
    count(lane);
}

void HostFrames::count(int lane) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (lane < 0 || lane >= shape_.lanes) ++violations;
        else ++lane_frames_[size_t(lane)];
        if (lane < gate_lanes_from) gate_open_ = true;
    }
    gate_.notify_all();
}

void HostFrames::pass_gate(int lane) {
    if (gate_lanes_from < 0 || lane < gate_lanes_from) return;
    std::unique_lock<std::mutex> lock(mu_);
    if (!gate_.wait_for(lock, std::chrono::seconds(20), [&] { return gate_open_; })) {
        ++violations;
        gate_open_ = true;  // once is enough
    }
}

int HostFrames::frames_from(int lane) {
    std::lock_guard<std::mutex> lock(mu_);
    return lane_frames_.at(size_t(lane));
}

void HostFrames::end_slot(int, int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    --state_.at(size_t(slot)).writing;
}

Tensor HostFrames::take(int slot, int64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    State& s = state_.at(size_t(slot));
    if (s.writing != 0 || s.held) ++violations;
    s.held = true;
    return Tensor::wrap(frame(slot, 0), {n, shape_.height, shape_.width, 3}, DType::u8, Device::cpu, nullptr);
}

void HostFrames::release(int slot) {
    std::lock_guard<std::mutex> lock(mu_);
    state_.at(size_t(slot)).held = false;
}

uint8_t* HostFrames::frame(int slot, int index) {
    const size_t bytes = size_t(shape_.height) * shape_.width * 3;
    std::call_once(allocated_, [&] { buffer_.reset(new uint8_t[size_t(shape_.slots) * shape_.batch * bytes]); });
    return buffer_.get() + (size_t(slot) * shape_.batch + size_t(index)) * bytes;
}

}  // namespace vidi
