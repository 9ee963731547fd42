#include "backend/cuda/step_graph.h"

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {

StepGraph::~StepGraph() {
    // No throwing here. The last launch must finish before its blocks return to the pool.
    if (done_) cudaEventSynchronize(done_), cudaEventDestroy(done_);
    if (exec_) cudaGraphExecDestroy(exec_);
}

void StepGraph::record(cudaStream_t stream, const std::function<void()>& queue_ops) {
    VIDI_CHECK(!exec_, "StepGraph::record: already recorded");
    // Relaxed: the memory pool may still call cudaMalloc while a step is being captured.
    VIDI_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    cudaGraph_t graph = nullptr;
    try {
        queue_ops();
    } catch (...) {
        cudaStreamEndCapture(stream, &graph);  // ends the capture whatever failed inside
        if (graph) cudaGraphDestroy(graph);
        throw;
    }
    VIDI_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    const cudaError_t err = cudaGraphInstantiate(&exec_, graph, 0);
    cudaGraphDestroy(graph);
    VIDI_CUDA_CHECK(err);
    VIDI_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
}

void StepGraph::launch(cudaStream_t stream) {
    VIDI_CHECK(exec_, "StepGraph::launch: nothing recorded");
    VIDI_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
    VIDI_CUDA_CHECK(cudaEventRecord(done_, stream));
}

std::shared_ptr<void> StepGraph::block(size_t bytes, const std::function<std::shared_ptr<void>()>& fresh) {
    for (Block& b : blocks_)
        if (b.bytes == bytes && b.owner.use_count() == 1) return b.owner;
    blocks_.push_back({bytes, fresh()});
    return blocks_.back().owner;
}

}  // namespace vidi::cuda
