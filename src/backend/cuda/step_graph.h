// A decoding step as one CUDA graph. A step queues ~500 small kernels whose launches the GPU
// would otherwise wait on one by one; captured, they go to the GPU as a single launch. Each
// run captures the ops anew (positions and pointers change from step to step) and updates the
// instantiated graph in place (cudaGraphExecUpdate), which costs far less than instantiating;
// only a different sequence of ops (another split count, say) instantiates again.
#pragma once

#include <cuda_runtime_api.h>

#include <functional>

namespace vidi::cuda {

class StepGraph {
public:
    StepGraph() = default;
    ~StepGraph();
    StepGraph(const StepGraph&) = delete;
    StepGraph& operator=(const StepGraph&) = delete;

    // Captures what queue_ops enqueues on `stream` (which must be otherwise idle on the host
    // side: no synchronisation inside), then launches it on `stream`.
    void run(cudaStream_t stream, const std::function<void()>& queue_ops);
    // Waits until the last launch has finished (its host-memory reads included).
    void wait_last() const;
    int instantiations() const { return instantiations_; }

private:
    cudaGraphExec_t exec_ = nullptr;
    cudaEvent_t done_ = nullptr;
    int instantiations_ = 0;
};

}  // namespace vidi::cuda
