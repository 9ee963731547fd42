// CudaBackend: device, stream, memory and dtype conversion between host and device.
// The ops live in cuda_ops.cpp.
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <cufft.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_pool.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/staging.h"
#include "backend/cuda/step_graph.h"
#include "core/env_switch.h"

namespace vidi::cuda {
namespace {
constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;  // what cuBLAS suggests for Hopper
// Device memory of the process outside the pool: the CUDA context, module code (ours and
// cuBLAS's, loaded as first used) and the library handles. nvidia-smi showed 561 MiB for a
// whole process holding only the 32 MiB GEMM workspace on the H100 (CUDA 13 driver), and a
// 1-hour run under --gpu-memory 19GiB peaked 35 MiB over the cap with 576 MiB counted here
// once cuBLAS's batched GEMMs, cuFFT and more kernels came in, and 17 MiB under it with 640
// MiB; 672 MiB leaves room.
constexpr size_t kOutsidePoolBytes = size_t(672) << 20;
// Pinned staging for host-to-device copies: three slots of 64 MiB (192 MiB of host memory).
constexpr size_t kStagingSlotBytes = size_t(64) << 20;
constexpr int kStagingSlots = 3;
constexpr int64_t kToHostSliceElems = int64_t(8) << 20;    // to_host's f32 conversion: 32 MiB at a time

}  // namespace

CudaBackend::CudaBackend(int ordinal, DType act) : ordinal_(ordinal), act_(act) {
    VIDI_CHECK(act == DType::bf16 || act == DType::f16, "the CUDA backend computes in bf16 or f16, not ",
               dtype_name(act));
    int count = 0;
    VIDI_CUDA_CHECK(cudaGetDeviceCount(&count));
    VIDI_CHECK(ordinal >= 0 && ordinal < count, "cuda:", ordinal, ": no such GPU (", count, " CUDA device",
               count == 1 ? "" : "s", " present)");
    VIDI_CUDA_CHECK(cudaSetDevice(ordinal));
    cudaDeviceProp prop{};
    VIDI_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal));
    name_ = cat("cuda:", ordinal, " (", prop.name, ")", act == DType::f16 ? ", fp16" : "");
    sm_count_ = prop.multiProcessorCount;
    fp8_units_ = prop.major * 10 + prop.minor >= 89;
    VIDI_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    pool_ = std::make_shared<DevicePool>(ordinal);
    gemm_workspace_ = empty({static_cast<int64_t>(kGemmWorkspaceBytes)}, DType::u8);
    gemm_ = std::make_unique<Gemm>(gemm_workspace_.raw(), kGemmWorkspaceBytes);
    staging_ = std::make_unique<HostStaging>(kStagingSlotBytes, kStagingSlots);
    step_graphs_ = !env_is("VIDI_CUDA_GRAPHS", "0");
}

CudaBackend::~CudaBackend() {
    cudaStreamSynchronize(stream_);  // no throwing here; queued work must finish before the stream goes
    if (mel_fft_) cufftDestroy(*mel_fft_);
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
    gemm_.reset();
    staging_.reset();
    gemm_workspace_ = Tensor();
    cudaStreamDestroy(stream_);
}

Tensor CudaBackend::empty(const Shape& shape, DType dtype) { return allocate(shape, dtype, false); }

Tensor CudaBackend::allocate(const Shape& shape, DType dtype, bool for_model) {
    for (int64_t d : shape) VIDI_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
    const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
    if (bytes == 0) return Tensor::wrap(nullptr, shape, dtype, Device::cuda, nullptr);
    const std::string what = cat(dtype_name(dtype), shape_str(shape));
    std::shared_ptr<void> block;
    if (for_model) block = pool_->allocate_packed(bytes, what);
    else if (recording_) block = recording_->block(bytes, [&] { return pool_->allocate(bytes, what); });
    else block = pool_->allocate(bytes, what);
    void* data = block.get();  // before `block` is moved: argument order is unspecified
    if (poison_) VIDI_CUDA_CHECK(cudaMemsetAsync(data, 0xFF, bytes, stream_));
    return Tensor::wrap(data, shape, dtype, Device::cuda, std::move(block));
}

Tensor CudaBackend::to_device_raw(const Tensor& host, bool for_model, bool loading) {
    Tensor t = allocate(host.shape(), host.dtype(), for_model);
    const size_t bytes = host.nbytes();
    // A replay would copy the same bytes again: what changes reaches a step through run_step.
    VIDI_CHECK(!recording_ || !bytes, "a recorded step cannot upload host data (", host.describe(),
               "); its changing inputs are set by run_step");
    if (bytes) staging_->copy(t.raw(), host.raw(), bytes, stream_, for_model || loading);
    return t;
}

Tensor CudaBackend::upload(const Tensor& host) { return upload_as(host, act_, false); }

Tensor CudaBackend::upload_as(const Tensor& host, DType dtype, bool for_model) {
    VIDI_CHECK(host.defined(), "cuda upload(): undefined tensor");
    if (!dtype_is_float(host.dtype()) || host.dtype() == dtype)
        return host.on_host() ? to_device_raw(host, for_model) : host;
    // Other floats: raw bytes up, then converted on the device (bf16 -> f16 rounds as
    // PyTorch's .half() does: values beyond f16's range become ±inf, tiny ones subnormal).
    Tensor raw = host.on_host() ? to_device_raw(host, false, for_model) : host;
    Tensor t = allocate(host.shape(), dtype, for_model);
    convert(t.raw(), dtype, raw.raw(), raw.dtype(), raw.numel(), stream_);
    return t;
}

Tensor CudaBackend::weight(const Tensor& host) {
    VIDI_CHECK(host.defined(), "cuda weight(): undefined tensor");
    // As stored when the checkpoint holds the activation dtype; converted once, here, otherwise.
    return upload_as(host, act_, true);
}

Tensor CudaBackend::f32_weight(const Tensor& host) {
    VIDI_CHECK(host.defined(), "cuda f32_weight(): undefined tensor");
    // The official model holds every weight in its dtype and widens the positional MLPs' to
    // f32 as they run: the values are the checkpoint's rounded to the activation dtype (for a
    // bf16 checkpoint: exact in bf16, f16's rounding in fp16), then widened exactly.
    const Tensor held = upload_as(host, act_, false);
    return upload_as(held, DType::f32, true);
}

Tensor CudaBackend::to_host(const Tensor& t) {
    VIDI_CHECK(t.defined(), "cuda to_host(): undefined tensor");
    const bool is_float = dtype_is_float(t.dtype());
    if (t.on_host()) return is_float ? t.to_f32().clone() : t.clone();
    const DType out_dtype = is_float ? DType::f32 : t.dtype();
    Tensor out = Tensor::empty(t.shape(), out_dtype);
    if (out_dtype == t.dtype()) {
        if (out.nbytes()) VIDI_CUDA_CHECK(cudaMemcpyAsync(out.raw(), t.raw(), out.nbytes(), cudaMemcpyDefault, stream_));
    } else {
        // Converted to f32 on the device a slice at a time: a whole f32 copy of a large tensor
        // (the visual tokens of a long video: 0.8 GiB) would not fit where the plan left no room.
        const int64_t n = t.numel(), slice = std::min<int64_t>(n, kToHostSliceElems);
        Tensor f32 = empty({slice}, DType::f32);
        const size_t es = dtype_size(t.dtype());
        for (int64_t i = 0; i < n; i += slice) {
            const int64_t m = std::min(slice, n - i);
            convert(f32.raw(), DType::f32, static_cast<const char*>(t.raw()) + i * es, t.dtype(), m, stream_);
            VIDI_CUDA_CHECK(cudaMemcpyAsync(out.data<float>() + i, f32.raw(), size_t(m) * sizeof(float),
                                            cudaMemcpyDefault, stream_));
        }
    }
    VIDI_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return out;
}

void CudaBackend::copy_(Tensor& dst, const Tensor& src) {
    VIDI_CHECK(dst.defined() && src.defined(), "copy_: ", src.describe(), " into ", dst.describe());
    VIDI_CHECK(dst.numel() == src.numel(), "copy_: ", src.describe(), " into ", dst.describe(),
               " (element counts differ)");
    if (dst.numel() == 0) return;
    if (dst.dtype() == src.dtype()) {
        if (src.on_host() && !dst.on_host()) staging_->copy(dst.raw(), src.raw(), src.nbytes(), stream_);
        else VIDI_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyDefault, stream_));
    } else {
        VIDI_CHECK(dtype_is_float(dst.dtype()) && dtype_is_float(src.dtype()), "copy_: cannot convert ",
                   src.describe(), " to ", dst.describe());
        if (dst.on_host() && src.on_host()) {
            Tensor f = src.to_f32();
            convert_from_f32(f.data<float>(), dst.dtype(), dst.raw(), static_cast<size_t>(f.numel()));
            return;
        }
        // Convert on the device, staging whichever side is on the host.
        const Tensor s = src.on_host() ? to_device_raw(src) : src;
        Tensor d = dst.on_host() ? empty(dst.shape(), dst.dtype()) : dst;
        convert(d.raw(), d.dtype(), s.raw(), s.dtype(), s.numel(), stream_);
        if (dst.on_host())
            VIDI_CUDA_CHECK(cudaMemcpyAsync(dst.raw(), d.raw(), dst.nbytes(), cudaMemcpyDefault, stream_));
    }
    if (dst.on_host()) VIDI_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::synchronize() { VIDI_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

int64_t CudaBackend::time_point() {
    VIDI_CHECK(!recording_, "a profiled section inside a recorded step");  // events do not time graph nodes
    if (events_used_ == events_.size()) {
        cudaEvent_t e = nullptr;
        VIDI_CUDA_CHECK(cudaEventCreate(&e));
        events_.push_back(e);
    }
    VIDI_CUDA_CHECK(cudaEventRecord(events_[events_used_], stream_));
    return static_cast<int64_t>(events_used_++);
}

double CudaBackend::ms_between(int64_t from, int64_t to) {
    float ms = 0;
    VIDI_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[static_cast<size_t>(from)], events_[static_cast<size_t>(to)]));
    return ms;
}

void CudaBackend::run_step(std::unique_ptr<StepRecording>& rec, const std::vector<StepInput>& inputs,
                           const std::function<void()>& queue) {
    VIDI_CHECK(!recording_, "run_step inside a recorded step");
    if (!step_graphs_) return Backend::run_step(rec, inputs, queue);
    set_step_inputs(inputs);
    auto* graph = dynamic_cast<StepGraph*>(rec.get());
    if (!graph) {
        if (!recording_gate_.begin_capture()) return queue();  // held: directly this time, recorded later
        auto fresh = std::make_unique<StepGraph>();
        recording_ = fresh.get();
        try {
            fresh->record(stream_, queue);
        } catch (...) {
            recording_ = nullptr;
            recording_gate_.end_capture();
            throw;
        }
        recording_ = nullptr;
        recording_gate_.end_capture();
        ++step_recordings_;
        graph = fresh.get();
        rec = std::move(fresh);
    }
    graph->launch(stream_);
}

size_t CudaBackend::bytes_in_use() const { return pool_->bytes_in_use(); }

std::optional<DeviceMemory> CudaBackend::device_memory() const {
    DeviceMemory m;
    VIDI_CUDA_CHECK(cudaMemGetInfo(&m.free, &m.total));
    m.in_use = pool_->bytes_in_use();
    m.cached = pool_->bytes_cached();
    m.limit = limit_;
    m.outside = limit_ ? kOutsidePoolBytes : 0;
    return m;
}

void CudaBackend::set_memory_limit(size_t bytes) {
    VIDI_CHECK(bytes == 0 || bytes > kOutsidePoolBytes, "--gpu-memory ", bytes, " bytes is below the ",
               kOutsidePoolBytes >> 20, " MiB the CUDA context alone takes");
    limit_ = bytes;
    pool_->set_limit(bytes ? bytes - kOutsidePoolBytes : 0);
}
size_t CudaBackend::bytes_cached() const { return pool_->bytes_cached(); }
void CudaBackend::release_cached() {
    synchronize();
    pool_->release_cached();
}

}  // namespace vidi::cuda

namespace vidi {

std::unique_ptr<Backend> make_cuda_backend(int ordinal, DType act) {
    return std::make_unique<cuda::CudaBackend>(ordinal, act);
}

bool cuda_available() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // no driver or no device: not an error for "auto"
        return false;
    }
    return count > 0;
}

}  // namespace vidi
