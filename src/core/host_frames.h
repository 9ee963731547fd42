// A DeviceFrames ring in host memory: the frame ring's protocol without a GPU. Tests and
// benchmarks stand it in for a GPU backend's ring (FrameOptions::device_frames) so that the
// decoding lanes, the ring's bookkeeping and the reader run as they do on a GPU machine; it
// counts breaches of the protocol (a lane writing a slot the reader holds, the reader taking a
// slot a lane is still writing).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "core/device_frames.h"

namespace vidi {

class HostFrames final : public DeviceFrames {
public:
    explicit HostFrames(const DeviceFramesShape& shape);
    const DeviceFramesShape& shape() const override { return shape_; }
    int device_ordinal() const override { return 0; }
    void* cuda_context() const override { return nullptr; }
    void* lane_stream(int) override { return nullptr; }
    void begin_slot(int lane, int slot) override;
    void convert(int lane, const YuvPlanes& planes, const YuvToRgb& plan, int rotation, int slot, int index) override;
    void put_host(int lane, const uint8_t* rgb, ptrdiff_t pitch, int slot, int index) override;
    void end_slot(int lane, int slot) override;
    Tensor take(int slot, int64_t n) override;
    void release(int slot) override;

    std::atomic<int> violations{0}, frames_put{0};
    int fail_at = -1;  // put_host throws once this many frames went in (tests of a lane's error)
    int fail_lane = -1;  // put_host throws for this lane's frames
    // Lanes from this one on write nothing until a lane below it has written a frame (tests: that
    // those lanes run meanwhile); after 20 s they go on, counting a violation.
    int gate_lanes_from = -1;
    int frames_from(int lane);  // frames `lane` put or converted in so far

private:
    uint8_t* frame(int slot, int index);
    void count(int lane);  // one more frame from `lane` (a lane outside the shape is a violation)
    void pass_gate(int lane);  // gate_lanes_from's wait
    struct State {
        int writing = 0;
        bool held = false;
    };
    DeviceFramesShape shape_;
    // Allocated when first written, and not cleared: zeroing a 720p ring's 0.27 GB took the
    // dev box 0.75 s, which the first batch then waited for.
    std::unique_ptr<uint8_t[]> buffer_;
    std::once_flag allocated_;
    std::vector<State> state_;
    std::vector<int> lane_frames_;  // per lane: frames written
    bool gate_open_ = false;
    std::mutex mu_;
    std::condition_variable gate_;
};

}  // namespace vidi
