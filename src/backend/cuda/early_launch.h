// Launches that may start before their predecessor in the stream has finished (programmatic
// dependent launch, compute capability 9.0 and newer): the kernel's side is in common.cuh
// (dependency_wait, dependents_may_start). A CUDA graph captured from the stream keeps them
// as programmatic edges (CUDA 12.3 and newer). VIDI_EARLY_LAUNCH=0 turns them into ordinary
// launches.
//
// A kernel launched early must keep two rules:
// - every thread calls dependency_wait() before it exits, and before it reads anything that a
//   kernel since the last ordinary launch in the stream may have written (not only the one
//   right before it: that one may itself have started early) or writes global memory;
// - after the wait, such data is read through coherent loads, never the read-only path
//   (__ldg, ld.global.nc): that cache may hold lines from before the writes.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {

// Whether the current device takes early launches (and VIDI_EARLY_LAUNCH is not 0).
bool early_launch_enabled();
// Whether `kernel`'s code on the current device was compiled for compute capability 9.0 or
// newer, so that it has its wait (PTX for an older one, JIT-compiled here, has none).
bool kernel_waits(const void* kernel);

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
    static const bool waits = kernel_waits(reinterpret_cast<const void*>(kernel));
    config.numAttrs = early_launch_enabled() && waits ? 1 : 0;
    VIDI_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace vidi::cuda
