// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) in bf16 through cuBLASLt, f32 accumulation,
// the bias (and GELU, or the sum with y's old values) applied in the GEMM's epilogue.
// Algorithms are chosen by cuBLASLt's heuristic once per shape, alignment and epilogue,
// then reused.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "backend/cuda/kernels.h"

namespace vidi::cuda {

// What the GEMM's epilogue does to x·wᵀ + bias before it is stored.
enum class Epilogue : uint8_t {
    none,
    gelu_tanh,   // GELU, tanh form (cuBLASLt's GELU epilogue)
    accumulate,  // adds y's old values: y += x·wᵀ + bias, rounded once
};

class Gemm {
public:
    // `workspace` (device, `workspace_bytes` long) must outlive this object.
    Gemm(void* workspace, size_t workspace_bytes);
    ~Gemm();
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;

    // ldy: the row pitch of y in elements (0: N); a larger one writes N columns of a wider y.
    void linear(bf16* y, const bf16* x, const bf16* w, const bf16* bias, int64_t M, int64_t N, int64_t K,
                cudaStream_t stream, int64_t ldy = 0, Epilogue epilogue = Epilogue::none);

    // For each of `count` problems i: c[i][M, N] = alpha · a[i][M, K] · op(b[i]) in row-major
    // terms, with op(b) = b[N, K]ᵀ (b_transposed) or b[K, N]; a and b bf16, c bf16 or f32
    // (c_dtype), f32 accumulation. a, b, c are device arrays of device pointers; lda, ldb,
    // ldc are row pitches in elements. Serves attention's scores and weighted values.
    void batched(void* const* c, DType c_dtype, int64_t ldc, const bf16* const* a, int64_t lda,
                 const bf16* const* b, int64_t ldb, bool b_transposed, int64_t M, int64_t N, int64_t K, float alpha,
                 int count, cudaStream_t stream);

private:
    // M, N, K, ldy, has bias, the alignments (bytes) of x, w, y, bias, and the epilogue.
    using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, int, int, int, int, Epilogue>;
    cublasLtHandle_t handle_ = nullptr;
    cublasHandle_t blas_ = nullptr;  // the pointer-array batched GEMMs
    void* workspace_;
    size_t workspace_bytes_;
    std::map<Key, cublasLtMatmulAlgo_t> algos_;
};

}  // namespace vidi::cuda
