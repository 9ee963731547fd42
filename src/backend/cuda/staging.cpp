#include "backend/cuda/staging.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {
namespace {
constexpr size_t kThreadPiece = size_t(2) << 20;     // threaded copies into a slot: 2 MiB per thread task
constexpr size_t kThreadedBytes = size_t(32) << 20;  // the least copy (but weights) that takes threads
}

HostStaging::HostStaging(size_t slot_bytes, int slots) : slots_(static_cast<size_t>(slots)), slot_bytes_(slot_bytes) {}

HostStaging::~HostStaging() {
    for (Slot& s : slots_) {  // no throwing here: wait for the DMA, then free
        if (s.done) cudaEventSynchronize(s.done), cudaEventDestroy(s.done);
        if (s.host) cudaFreeHost(s.host);
    }
}

bool HostStaging::ready(Slot& s) {
    if (s.host) return true;
    if (pinned_failed_) return false;
    if (cudaHostAlloc(&s.host, slot_bytes_, cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();  // clear it: pinned memory is an optimisation, not a requirement
        s.host = nullptr;
        pinned_failed_ = true;
        return false;
    }
    VIDI_CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
    return true;
}

void HostStaging::copy(void* dst_device, const void* src_host, size_t bytes, cudaStream_t stream, bool loading) {
    auto* dst = static_cast<char*>(dst_device);
    const auto* src = static_cast<const char*>(src_host);
    const bool threads = loading || bytes >= kThreadedBytes;
    for (size_t off = 0; off < bytes;) {
        Slot& s = slots_[next_++ % slots_.size()];
        const size_t n = std::min(slot_bytes_, bytes - off);
        if (!ready(s)) {
            VIDI_CUDA_CHECK(cudaMemcpyAsync(dst + off, src + off, bytes - off, cudaMemcpyHostToDevice, stream));
            return;
        }
        VIDI_CUDA_CHECK(cudaEventSynchronize(s.done));  // this slot's previous copy has left
        char* pinned = static_cast<char*>(s.host);
        const int64_t pieces = static_cast<int64_t>((n + kThreadPiece - 1) / kThreadPiece);
#pragma omp parallel for if (threads && pieces > 1) schedule(static)
        for (int64_t p = 0; p < pieces; ++p) {
            const size_t b = static_cast<size_t>(p) * kThreadPiece;
            std::memcpy(pinned + b, src + off + b, std::min(kThreadPiece, n - b));
        }
        VIDI_CUDA_CHECK(cudaMemcpyAsync(dst + off, pinned, n, cudaMemcpyHostToDevice, stream));
        VIDI_CUDA_CHECK(cudaEventRecord(s.done, stream));
        off += n;
    }
}

}  // namespace vidi::cuda
