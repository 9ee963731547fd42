// Host-to-device copies through pinned staging slots. A cudaMemcpyAsync from pageable
// memory first waits for everything queued on the stream (CUDA's rule for pageable
// sources), so the host thread that uploads the next batch of frames would stall until the
// GPU drained. Staged, the host copies into a pinned slot, the DMA is queued behind the
// kernels, and the host waits only while every slot still has a copy in flight. Weights and
// copies of 32 MiB or more fill their slots with several threads (loading weights from the
// page cache is faster so); a request's smaller uploads (a pass of audio samples) use one:
// waking an idle OpenMP team costs more than such a copy (bench/RESULTS.md).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

namespace vidi::cuda {

class HostStaging {
public:
    HostStaging(size_t slot_bytes, int slots);
    ~HostStaging();
    HostStaging(const HostStaging&) = delete;
    HostStaging& operator=(const HostStaging&) = delete;

    // Enqueues dst[0, bytes) = src[0, bytes) on `stream`; src may be reused on return.
    // `loading`: one of the load's back-to-back weight uploads, copied with threads at any size.
    void copy(void* dst_device, const void* src_host, size_t bytes, cudaStream_t stream, bool loading = false);

private:
    struct Slot {
        void* host = nullptr;  // pinned, slot_bytes_ long (allocated on first use)
        cudaEvent_t done = nullptr;
    };
    bool ready(Slot& s);  // false: no pinned memory to be had (copies go direct)
    std::vector<Slot> slots_;
    size_t slot_bytes_;
    size_t next_ = 0;
    bool pinned_failed_ = false;
};

}  // namespace vidi::cuda
