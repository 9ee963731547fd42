// A decoding step recorded once as a CUDA graph and replayed for every token. A step queues
// ~500 small kernels; replayed, they reach the GPU as one launch and the host does no work
// per op. The graph reads what changes (the token id, the position) from device memory that
// run_step sets before each launch, and keeps every device block its ops allocated while
// recording, so a replay finds its intermediates where it left them. Within the recording a
// block of the same size is handed out again once no tensor holds it (the nodes run in stream
// order), so the step keeps about what a direct run holds at its peak.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"

namespace vidi::cuda {

class StepGraph final : public StepRecording {
public:
    StepGraph() = default;
    ~StepGraph() override;
    StepGraph(const StepGraph&) = delete;
    StepGraph& operator=(const StepGraph&) = delete;

    // Captures what queue_ops enqueues on `stream` (no synchronisation inside) and
    // instantiates it; nothing runs yet.
    void record(cudaStream_t stream, const std::function<void()>& queue_ops);
    void launch(cudaStream_t stream);
    // A device block of `bytes` for an op being recorded: one kept earlier that no tensor
    // holds any more, else fresh() (which the graph then keeps).
    std::shared_ptr<void> block(size_t bytes, const std::function<std::shared_ptr<void>()>& fresh);

private:
    struct Block {
        size_t bytes;
        std::shared_ptr<void> owner;
    };
    std::vector<Block> blocks_;
    cudaGraphExec_t exec_ = nullptr;
    cudaEvent_t done_ = nullptr;  // recorded after each launch: the blocks go back only after it
};

}  // namespace vidi::cuda
