// CudaBackend's rings of frame batches for NVDEC (core/device_frames.h): the buffers come from
// the backend's pool, each decoding lane gets a stream of its own, and events order the
// lanes' writes against the backend stream's reads in both directions.
#include <mutex>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_pool.h"
#include "backend/cuda/yuv_rgb.h"

namespace vidi::cuda {
namespace {

cudaEvent_t new_event() {
    cudaEvent_t e = nullptr;
    VIDI_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
}

// The CUcontext current on this thread (the device's primary context, the runtime's), through
// the driver entry point the runtime hands out: the backend does not link libcuda itself.
void* current_context() {
    using GetCurrent = int (*)(void**);
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    VIDI_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000, cudaEnableDefault, &found));
    VIDI_CHECK(fn && found == cudaDriverEntryPointSuccess, "the CUDA driver has no cuCtxGetCurrent");
    void* ctx = nullptr;
    VIDI_CHECK(reinterpret_cast<GetCurrent>(fn)(&ctx) == 0 && ctx, "no current CUDA context");
    return ctx;
}

class CudaDeviceFrames final : public DeviceFrames {
public:
    CudaDeviceFrames(CudaBackend& be, const DeviceFramesShape& s, std::shared_ptr<void> outside)
        : be_(be), shape_(s), outside_(std::move(outside)) {
        VIDI_CHECK(s.slots > 0 && s.batch > 0 && s.lanes_valid() && s.lanes <= 64 && s.width > 0 && s.height > 0,
                   "device_frames: bad shape");
        VIDI_CUDA_CHECK(cudaSetDevice(be.ordinal()));
        VIDI_CUDA_CHECK(cudaFree(nullptr));  // the primary context exists and is current
        context_ = current_context();
        buffers_ = be.empty({s.slots, s.batch, s.height, s.width, 3}, DType::u8);
        rows_ = be.empty({s.lanes, std::max(s.height, s.width)}, DType::i32);
        lanes_.resize(static_cast<size_t>(s.lanes));
        slots_.resize(static_cast<size_t>(s.slots));
        // The pool may hand out memory that work queued on the backend's stream still reads:
        // every lane starts after it.
        cudaEvent_t ready = new_event();
        VIDI_CUDA_CHECK(cudaEventRecord(ready, be.stream()));
        for (Lane& l : lanes_) {
            VIDI_CUDA_CHECK(cudaStreamCreateWithFlags(&l.stream, cudaStreamNonBlocking));
            VIDI_CUDA_CHECK(cudaStreamWaitEvent(l.stream, ready, 0));
        }
        VIDI_CUDA_CHECK(cudaEventDestroy(ready));
        for (Slot& sl : slots_) {
            sl.released = new_event();
            for (int i = 0; i < s.lanes; ++i) sl.written.push_back(new_event());
        }
    }

    ~CudaDeviceFrames() override {
        // No throwing here: the lanes' work finishes before the buffers go back to the pool.
        cudaSetDevice(be_.ordinal());
        for (Lane& l : lanes_) {
            cudaStreamSynchronize(l.stream);
            cudaStreamDestroy(l.stream);
        }
        for (Slot& sl : slots_) {
            cudaEventDestroy(sl.released);
            for (cudaEvent_t e : sl.written) cudaEventDestroy(e);
        }
    }

    const DeviceFramesShape& shape() const override { return shape_; }
    int device_ordinal() const override { return be_.ordinal(); }
    void* cuda_context() const override { return context_; }
    void* lane_stream(int lane) override { return lane_at(lane).stream; }

    void begin_slot(int lane, int slot) override {
        Slot& s = slot_at(slot);
        VIDI_CUDA_CHECK(cudaSetDevice(be_.ordinal()));
        std::lock_guard<std::mutex> lock(mu_);
        if (s.ever_released) VIDI_CUDA_CHECK(cudaStreamWaitEvent(lane_at(lane).stream, s.released, 0));
    }

    void convert(int lane, const YuvPlanes& planes, const YuvToRgb& plan, int rotation, int slot, int index) override {
        Lane& l = lane_at(lane);
        const YuvRgbMath& m = plan.math;
        VIDI_CHECK(m.width == shape_.width && m.height == shape_.height, "device_frames: a plan for ", m.width, "x",
                   m.height, " frames in a ring of ", shape_.width, "x", shape_.height);
        VIDI_CUDA_CHECK(cudaSetDevice(be_.ordinal()));
        const int32_t* rows = nullptr;
        if (m.path == YuvRgbPath::scaled) {
            VIDI_CHECK(plan.chroma_rows.size() == size_t(m.height), "device_frames: the plan has no chroma rows");
            rows = static_cast<const int32_t*>(rows_.raw()) + int64_t(lane) * rows_.dim(1);
            if (l.rows != plan.chroma_rows) {  // a new plan: its rows go up once
                l.rows = plan.chroma_rows;
                VIDI_CUDA_CHECK(cudaMemcpyAsync(const_cast<int32_t*>(rows), l.rows.data(), l.rows.size() * 4,
                                                cudaMemcpyHostToDevice, l.stream));
            }
        }
        yuv_to_rgb24(frame(slot, index), int64_t(shape_.width) * 3, planes, m, rows, rotation, l.stream);
    }

    void put_host(int lane, const uint8_t* rgb, ptrdiff_t pitch, int slot, int index) override {
        Lane& l = lane_at(lane);
        VIDI_CUDA_CHECK(cudaSetDevice(be_.ordinal()));
        const size_t row = size_t(shape_.width) * 3;
        VIDI_CUDA_CHECK(cudaMemcpy2DAsync(frame(slot, index), row, rgb, static_cast<size_t>(pitch), row,
                                          static_cast<size_t>(shape_.height), cudaMemcpyHostToDevice, l.stream));
        VIDI_CUDA_CHECK(cudaStreamSynchronize(l.stream));  // the host memory is the caller's again
    }

    void end_slot(int lane, int slot) override {
        Slot& s = slot_at(slot);
        VIDI_CUDA_CHECK(cudaSetDevice(be_.ordinal()));
        std::lock_guard<std::mutex> lock(mu_);
        VIDI_CUDA_CHECK(cudaEventRecord(s.written[static_cast<size_t>(lane)], lane_at(lane).stream));
        s.writers |= uint64_t(1) << lane;
    }

    Tensor take(int slot, int64_t n) override {
        Slot& s = slot_at(slot);
        VIDI_CHECK(n > 0 && n <= shape_.batch, "device_frames: taking ", n, " frames of a batch of ", shape_.batch);
        {
            std::lock_guard<std::mutex> lock(mu_);
            for (int lane = 0; lane < shape_.lanes; ++lane)
                if (s.writers >> lane & 1)
                    VIDI_CUDA_CHECK(cudaStreamWaitEvent(be_.stream(), s.written[static_cast<size_t>(lane)], 0));
            s.writers = 0;
        }
        return buffers_.row(slot).rows(0, n);
    }

    void release(int slot) override {
        Slot& s = slot_at(slot);
        std::lock_guard<std::mutex> lock(mu_);
        VIDI_CUDA_CHECK(cudaEventRecord(s.released, be_.stream()));
        s.ever_released = true;
    }

private:
    struct Lane {
        cudaStream_t stream = nullptr;
        std::vector<int32_t> rows;  // the chroma rows in its part of rows_
    };
    struct Slot {
        cudaEvent_t released = nullptr;    // the reader's last release
        bool ever_released = false;
        std::vector<cudaEvent_t> written;  // per lane: its last end_slot
        uint64_t writers = 0;              // lanes that wrote since the last take
    };
    Lane& lane_at(int lane) {
        VIDI_CHECK(lane >= 0 && lane < shape_.lanes, "device_frames: no lane ", lane);
        return lanes_[static_cast<size_t>(lane)];
    }
    Slot& slot_at(int slot) {
        VIDI_CHECK(slot >= 0 && slot < shape_.slots, "device_frames: no slot ", slot);
        return slots_[static_cast<size_t>(slot)];
    }
    uint8_t* frame(int slot, int index) {
        VIDI_CHECK(index >= 0 && index < shape_.batch, "device_frames: no frame ", index, " in a batch");
        const int64_t bytes = int64_t(shape_.height) * shape_.width * 3;
        return static_cast<uint8_t*>(buffers_.raw()) + (int64_t(slot) * shape_.batch + index) * bytes;
    }

    CudaBackend& be_;
    DeviceFramesShape shape_;
    std::shared_ptr<void> outside_;  // the decoders' own memory, counted in the pool (DevicePool::reserve)
    void* context_ = nullptr;
    Tensor buffers_;  // u8 [slots, batch, h, w, 3]
    Tensor rows_;     // i32 [lanes, max(h, w)]: each lane's chroma rows
    std::vector<Lane> lanes_;
    std::vector<Slot> slots_;
    std::mutex mu_;  // the events and flags (lanes and the reader call from their own threads)
};

}  // namespace

DeviceFramesShape CudaBackend::device_frames_shape(const DeviceFramesShape& asked) const {
    DeviceFramesShape s = asked;
    // Under --gpu-memory every byte is planned: the ring takes the fewest batches that keep
    // the lanes going (three: a lane's segment spans at most three batches).
    if (limit_) s.slots = std::min(s.slots, 3);
    return s;
}

std::unique_ptr<DeviceFrames> CudaBackend::device_frames(const DeviceFramesShape& shape) {
    const DeviceFramesShape s = device_frames_shape(shape);
    // The decoders' own memory (NVDEC's sessions, outside the pool) is counted while the ring
    // lives: the lanes' decoders close before it goes (media/frame_stream.cpp).
    std::shared_ptr<void> outside;
    if (s.lane_outside_bytes)
        outside = pool_->reserve(size_t(s.device_decoders()) * s.lane_outside_bytes,
                                 cat("the ", s.device_decoders(), " video decoders' own memory (NVDEC's sessions, estimated)"));
    return std::make_unique<CudaDeviceFrames>(*this, s, std::move(outside));
}

}  // namespace vidi::cuda
