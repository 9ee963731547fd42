#include "backend/cuda/step_graph.h"

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {

StepGraph::~StepGraph() {
    if (done_) cudaEventSynchronize(done_), cudaEventDestroy(done_);  // no throwing here
    if (exec_) cudaGraphExecDestroy(exec_);
}

void StepGraph::wait_last() const {
    if (done_) VIDI_CUDA_CHECK(cudaEventSynchronize(done_));
}

void StepGraph::run(cudaStream_t stream, const std::function<void()>& queue_ops) {
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
    if (exec_) {
        cudaGraphExecUpdateResultInfo info{};
        if (cudaGraphExecUpdate(exec_, graph, &info) != cudaSuccess) {
            cudaGetLastError();  // a different sequence of ops: instantiate below
            cudaGraphExecDestroy(exec_);
            exec_ = nullptr;
        }
    }
    cudaError_t err = cudaSuccess;
    if (!exec_) {
        err = cudaGraphInstantiate(&exec_, graph, 0);
        if (err == cudaSuccess) ++instantiations_;
    }
    cudaGraphDestroy(graph);
    VIDI_CUDA_CHECK(err);
    if (!done_) VIDI_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    VIDI_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
    VIDI_CUDA_CHECK(cudaEventRecord(done_, stream));
}

}  // namespace vidi::cuda
