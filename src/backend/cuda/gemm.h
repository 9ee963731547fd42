// y[M, N] = x[M, K] · w[N, K]ᵀ (+ bias[N]) through cuBLASLt: 16-bit inputs (bf16 or fp16) with
// a 16-bit or f32 output, or f32 throughout; always f32 accumulation (CUBLAS_COMPUTE_32F: no
// TF32), the bias (and GELU, or the sum with y's old values) applied in the GEMM's epilogue.
// Algorithms are chosen by cuBLASLt's heuristic once per shape, alignment and epilogue,
// then reused. Up to kRowInvariantRows rows the choice ignores the row count (see there).
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

// GEMMs of up to this many rows (a prompt's text, several prompts together) share one
// algorithm per shape: the heuristic's pick for kRowInvariantQueryRows rows, without split-K.
// Such a kernel computes each output row from its own input row in the same order whatever
// the other rows are, so a prompt's rows get the same bits alone or among other prompts'
// (tests/cuda/row_invariance_test.cpp), which lets a batch of prompts read the weights once.
// Larger GEMMs (the media tokens, the towers) keep the heuristic's pick for their own shape.
constexpr int64_t kRowInvariantRows = 2048;
constexpr int64_t kRowInvariantQueryRows = 512;

// What the GEMM's epilogue does to x·wᵀ + bias before it is stored.
enum class Epilogue : uint8_t {
    none,
    gelu_tanh,   // GELU, tanh form (cuBLASLt's GELU epilogue)
    accumulate,  // adds y's old values: y += x·wᵀ + bias, rounded once
};

// How an FP8 GEMM's inputs are scaled: one f32 scale a row of each operand, or one for each.
enum class Fp8Scales : uint8_t { rows, tensor };

// The float types of a GEMM: x and w (`in`: bf16, f16 or f32), y and the bias (`out`: `in`,
// or f32 for 16-bit inputs).
struct GemmTypes {
    DType in = DType::bf16;
    DType out = DType::bf16;
};

class Gemm {
public:
    // `workspace` (device, `workspace_bytes` long) must outlive this object.
    Gemm(void* workspace, size_t workspace_bytes);
    ~Gemm();
    Gemm(const Gemm&) = delete;
    Gemm& operator=(const Gemm&) = delete;

    // ldy: the row pitch of y in elements (0: N); a larger one writes N columns of a wider y.
    void linear(void* y, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
                GemmTypes types, cudaStream_t stream, int64_t ldy = 0, Epilogue epilogue = Epilogue::none);

    // The same product from FP8 inputs: y[M, N] = (sx[m] · xq[M, K]) · (sw[n] · wq[N, K])ᵀ
    // (+ bias[N]), xq and wq E4M3 codes (u8), sx [M] and sw [N] their f32 row scales (device),
    // f32 accumulators with fast accumulation, y 16-bit (`out`, bf16 or f16, as the bias).
    // cuBLASLt's outer-vector scaling; sm_89 and newer. K a multiple of 16, ldy (0: N) of 8.
    // Fp8Scales::tensor: sx and sw point to one scale each (cuBLASLt's scalar scaling).
    void linear_fp8(void* y, const void* xq, const float* sx, const void* wq, const float* sw, const void* bias,
                    int64_t M, int64_t N, int64_t K, DType out, cudaStream_t stream, int64_t ldy = 0,
                    Epilogue epilogue = Epilogue::none, Fp8Scales scales = Fp8Scales::rows);

    // For each of `count` problems i: c[i][M, N] = alpha · a[i][M, K] · op(b[i]) in row-major
    // terms, with op(b) = b[N, K]ᵀ (b_transposed) or b[K, N]; a and b of the 16-bit type
    // ab_dtype, c of that type or f32 (c_dtype), f32 accumulation. a, b, c are device arrays of
    // device pointers; lda, ldb, ldc are row pitches in elements. Serves attention's scores and
    // weighted values.
    void batched(void* const* c, DType c_dtype, int64_t ldc, const void* const* a, int64_t lda, const void* const* b,
                 int64_t ldb, DType ab_dtype, bool b_transposed, int64_t M, int64_t N, int64_t K, float alpha,
                 int count, cudaStream_t stream);

private:
    // M (0 up to kRowInvariantRows), N, K, ldy, has bias, the alignments (bytes) of x, w, y,
    // bias, the epilogue, the types, and (FP8) the scaling.
    using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, int, int, int, int, Epilogue, DType, DType, int>;
    cublasLtHandle_t handle_ = nullptr;
    cublasHandle_t blas_ = nullptr;  // the pointer-array batched GEMMs
    void* workspace_;
    size_t workspace_bytes_;
    std::map<Key, cublasLtMatmulAlgo_t> algos_;

    // The algorithm cached under `key`, else the one `search(pref)` picks (pref: a preference
    // with the workspace limit set), then cached.
    template <class Search>
    const cublasLtMatmulAlgo_t& algorithm(const Key& key, const Search& search);
    // y = w·x as described, plus y's old values for Epilogue::accumulate.
    void run(cublasLtMatmulDesc_t op, const void* w, cublasLtMatrixLayout_t a, const void* x, cublasLtMatrixLayout_t b,
             void* y, cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t& algo, Epilogue epilogue, cudaStream_t stream);
};

}  // namespace vidi::cuda
