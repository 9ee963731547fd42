// Frames decoded into device memory (NVDEC, through FFmpeg) become batches of packed RGB24
// there, for Backend::frames_to_pixels: the meeting point of the media layer, which drives
// the decoders, and a GPU backend, which owns the memory, the streams and the conversion
// kernel. Made by Backend::device_frames().
//
// The batches live in `slots` buffers of u8 [batch, h, w, 3]. Decoding lanes (threads, one
// CUDA stream each, which the decoder writes its frames on too) convert pictures into a
// slot; the consumer takes a full slot as a tensor, queues its work on it and releases it.
// The host side decides who writes which slot when (media/frame_stream.cpp); this interface
// orders the device work: a lane's writes into a slot wait until the consumer's reads of the
// slot's previous batch are done, and the consumer's reads wait for every lane's writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/yuv_rgb.h"
#include "vidi/tensor.h"

namespace vidi {

struct DeviceFramesShape {
    int slots = 0, batch = 0;  // buffers, and frames in each
    int height = 0, width = 0;  // the upright frames
    int lanes = 0;             // decoding lanes (streams)
    // Of those, the last `host_lanes` decode on the CPU and copy their frames in (NVDEC's start,
    // media/frame_stream.cpp): their decoders hold no device memory.
    int host_lanes = 0;
    // Device memory each other lane's decoder holds outside the buffers (NVDEC's session, which
    // FFmpeg allocates): counted as in use, under --gpu-memory too, while the frames live.
    size_t lane_outside_bytes = 0;
    int device_decoders() const { return lanes - host_lanes; }
    // Some lane decodes on the device: the host lanes are the last ones, never all of them.
    bool lanes_valid() const { return lanes > 0 && host_lanes >= 0 && host_lanes < lanes; }
    // Device memory the frames hold while they live: the slots' buffers and the lanes' decoders.
    size_t device_bytes() const {
        return size_t(slots) * size_t(batch) * size_t(height) * size_t(width) * 3 +
               size_t(device_decoders()) * lane_outside_bytes;
    }
};

class DeviceFrames {
public:
    virtual ~DeviceFrames() = default;
    virtual const DeviceFramesShape& shape() const = 0;
    // The CUDA device the buffers are on, and its context (a CUcontext: the CUDA runtime's
    // primary context, which the decoders share).
    virtual int device_ordinal() const = 0;
    virtual void* cuda_context() const = 0;

    // --- decoding lanes (lane < shape().lanes; each lane is used by one thread at a time) ---
    // The lane's CUDA stream (a CUstream: the decoder's AVCUDADeviceContext::stream).
    virtual void* lane_stream(int lane) = 0;
    // Before the lane writes into `slot`: its stream waits for the consumer's last release of it.
    virtual void begin_slot(int lane, int slot) = 0;
    // Frame `index` of `slot` := the planes (device memory, read on the lane's stream) turned
    // by `rotation` and converted as `plan` says (the reference: yuv_to_rgb24).
    virtual void convert(int lane, const YuvPlanes& planes, const YuvToRgb& plan, int rotation, int slot,
                         int index) = 0;
    // Frame `index` of `slot` := a picture converted on the host (rows of `pitch` bytes); the
    // host memory may be reused once this returns.
    virtual void put_host(int lane, const uint8_t* rgb, ptrdiff_t pitch, int slot, int index) = 0;
    // The lane's writes into `slot` so far are done as far as the host is concerned; the
    // consumer's take() waits for them on the device.
    virtual void end_slot(int lane, int slot) = 0;

    // --- the consumer (one thread) ---
    // The first n frames of `slot`, u8 [n, h, w, 3] on the device, readable by work queued on
    // the backend's stream from now on. Valid until the slot is released.
    virtual Tensor take(int slot, int64_t n) = 0;
    // The work queued on the backend's stream so far is the last that reads the slot.
    virtual void release(int slot) = 0;
};

using DeviceFramesMaker = std::function<std::unique_ptr<DeviceFrames>(const DeviceFramesShape&)>;

}  // namespace vidi
