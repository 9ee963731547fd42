// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) in bf16 through cuBLASLt, f32 accumulation,
// the bias added in the GEMM's epilogue. Algorithms are chosen by cuBLASLt's heuristic
// once per shape and alignment, then reused.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "backend/cuda/kernels.h"

namespace vidi::cuda {

class Gemm {
public:
    // `workspace` (device, `workspace_bytes` long) must outlive this object.
    Gemm(void* workspace, size_t workspace_bytes);
    ~Gemm();
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;

    // ldy: the row pitch of y in elements (0: N); a larger one writes N columns of a wider y.
    void linear(bf16* y, const bf16* x, const bf16* w, const bf16* bias, int64_t M, int64_t N, int64_t K,
                cudaStream_t stream, int64_t ldy = 0);

private:
    // M, N, K, ldy, has bias, and the alignments (bytes) of x, w, y, bias.
    using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, int, int, int, int>;
    cublasLtHandle_t handle_ = nullptr;
    void* workspace_;
    size_t workspace_bytes_;
    std::map<Key, cublasLtMatmulAlgo_t> algos_;
};

}  // namespace vidi::cuda
