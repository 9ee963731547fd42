#include "backend/cuda/cuda_check.h"

#include <cstring>

namespace vidi::cuda {
namespace {
// cublasGetStatusName lives in libcublas, which this backend does not otherwise need.
const char* status_name(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "unknown cuBLAS status";
    }
}

const char* base_name(const char* path) {
    const char* slash = std::strrchr(path, '/');
    return slash ? slash + 1 : path;
}
}  // namespace

void fail_cuda(cudaError_t err, const char* call, const char* file, int line) {
    fail("CUDA error in ", call, ": ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") at ",
         base_name(file), ":", line);
}

void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
    fail("cuBLAS error in ", call, ": ", status_name(status), " (", static_cast<int>(status), ") at ",
         base_name(file), ":", line);
}

}  // namespace vidi::cuda
