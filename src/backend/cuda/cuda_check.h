// Error checks for CUDA runtime and cuBLAS calls: a failing call becomes a vidi::Error
// that names the call, the CUDA error and the source line.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "vidi/error.h"

namespace vidi::cuda {

[[noreturn]] void fail_cuda(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace vidi::cuda

#define VIDI_CUDA_CHECK(call)                                                            \
    do {                                                                                 \
        cudaError_t vidi_err_ = (call);                                                  \
        if (vidi_err_ != cudaSuccess) ::vidi::cuda::fail_cuda(vidi_err_, #call, __FILE__, __LINE__); \
    } while (0)

// After a kernel launch: reports bad launch configurations (and earlier asynchronous faults).
#define VIDI_CUDA_CHECK_LAUNCH(what) VIDI_CUDA_CHECK(cudaGetLastError())

#define VIDI_CUBLAS_CHECK(call)                                                          \
    do {                                                                                 \
        cublasStatus_t vidi_st_ = (call);                                                \
        if (vidi_st_ != CUBLAS_STATUS_SUCCESS) ::vidi::cuda::fail_cublas(vidi_st_, #call, __FILE__, __LINE__); \
    } while (0)
