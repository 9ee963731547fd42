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

#include <initializer_list>
#include <utility>

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {

// Whether the current device takes early launches (and VIDI_EARLY_LAUNCH is not 0).
bool early_launch_enabled();
#ifdef __CUDACC__  // the launch side is for .cu files, which nvcc compiles with their architectures
// Whether this file's kernels were compiled for compute capability 9.0 or newer: a Hopper
// device then runs that code, with its waits. Built only for older GPUs (their PTX compiled for
// Hopper by the driver) the kernels have no wait and must not start early. nvcc lists the
// architectures it compiles for in __CUDA_ARCH_LIST__ (host pass too).
constexpr bool compiled_with_waits() {
#ifdef __CUDA_ARCH_LIST__
    for (int arch : {__CUDA_ARCH_LIST__})
        if (arch >= 900) return true;
#endif
    return false;
}

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
    config.numAttrs = compiled_with_waits() && early_launch_enabled() ? 1 : 0;
    VIDI_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}
#endif

}  // namespace vidi::cuda
