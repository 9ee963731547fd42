// Launches that may start before their predecessor in the stream has finished (programmatic
// dependent launch, compute capability 9.0 and newer): the kernel's side is in common.cuh
// (dependency_wait, dependents_may_start). A CUDA graph captured from the stream keeps them
// as programmatic edges. VIDI_EARLY_LAUNCH=0 turns them into ordinary launches.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {

// Whether the current device takes early launches (and VIDI_EARLY_LAUNCH is not 0).
bool early_launch_enabled();

// kernel<<<grid, block, smem, stream>>>(args...), allowed to start early where the device
// supports it. The kernel must call dependency_wait() before it touches its predecessor's
// output or writes global memory.
template <class... Params, class... Args>
void launch_early(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                  Args&&... args) {
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = &attr;
    config.numAttrs = early_launch_enabled() ? 1 : 0;
    VIDI_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace vidi::cuda
