#include "backend/cuda/gemm.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {
namespace {

// The alignment (bytes, at most 256) every row of a matrix starts on: that of its base
// pointer and of its row pitch. cuBLASLt needs it to rule out vectorised kernels.
int alignment(const void* p, int64_t row_bytes) {
    const auto v = reinterpret_cast<uintptr_t>(p);
    int a = 256;
    while (a > 1 && (v % a || row_bytes % a)) a /= 2;
    return a;
}

cudaDataType_t cuda_type(DType t) {
    switch (t) {
        case DType::bf16: return CUDA_R_16BF;
        case DType::f16: return CUDA_R_16F;
        case DType::f32: return CUDA_R_32F;
        default: fail("GEMM: ", dtype_name(t), " is not a GEMM type");
    }
}

// RAII holders for the cuBLASLt descriptors of one call.
struct OpDesc {
    cublasLtMatmulDesc_t d = nullptr;
    ~OpDesc() { if (d) cublasLtMatmulDescDestroy(d); }
};
struct Layout {
    cublasLtMatrixLayout_t d = nullptr;
    Layout(cudaDataType_t type, uint64_t rows, uint64_t cols, int64_t ld) {
        VIDI_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d, type, rows, cols, ld));
    }
    Layout(DType type, uint64_t rows, uint64_t cols, int64_t ld) : Layout(cuda_type(type), rows, cols, ld) {}
    ~Layout() { if (d) cublasLtMatrixLayoutDestroy(d); }
};
struct Preference {
    cublasLtMatmulPreference_t d = nullptr;
    ~Preference() { if (d) cublasLtMatmulPreferenceDestroy(d); }
};

template <class T>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const T& value) {
    VIDI_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
}
template <class T>
void set_pref(cublasLtMatmulPreference_t d, cublasLtMatmulPreferenceAttributes_t attr, const T& value) {
    VIDI_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d, attr, &value, sizeof(value)));
}

// The description of y = x·wᵀ (+ bias) as cuBLASLt computes it: row-major y = x·wᵀ is
// column-major yᵀ[N, M] = w[K, N]ᵀ · xᵀ[K, M] (A = w transposed, B = x: the "TN" layout FP8
// needs too), f32 accumulation, the epilogue's bias (of bias_type) and GELU.
void describe_linear(OpDesc& op, const void* bias, Epilogue epilogue, DType bias_type) {
    VIDI_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op.d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    set_desc(op.d, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    set_desc(op.d, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
    const bool gelu = epilogue == Epilogue::gelu_tanh;
    if (bias || gelu)
        set_desc(op.d, CUBLASLT_MATMUL_DESC_EPILOGUE,
                 gelu ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU) : CUBLASLT_EPILOGUE_BIAS);
    if (bias) {
        set_desc(op.d, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, cuda_type(bias_type));
        set_desc(op.d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    }
}

// The heuristic's first algorithm for these descriptors and preferences, or an error naming
// the GEMM (`what()`).
template <class What>
cublasLtMatmulAlgo_t first_algorithm(cublasLtHandle_t handle, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                                     cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d,
                                     cublasLtMatmulPreference_t pref, const What& what) {
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    VIDI_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, op, a, b, d, d, pref, 1, &result, &found));
    VIDI_CHECK(found > 0, "cuBLASLt has no ", what());
    return result.algo;
}

}  // namespace

Gemm::Gemm(void* workspace, size_t workspace_bytes) : workspace_(workspace), workspace_bytes_(workspace_bytes) {
    VIDI_CUBLAS_CHECK(cublasLtCreate(&handle_));
    VIDI_CUBLAS_CHECK(cublasCreate(&blas_));
    // cuBLAS would otherwise allocate a workspace of its own outside the memory pool (and
    // outside --gpu-memory); both handles run on one stream, so they can share this one.
    VIDI_CUBLAS_CHECK(cublasSetWorkspace(blas_, workspace_, workspace_bytes_));
}

Gemm::~Gemm() {
    if (handle_) cublasLtDestroy(handle_);
    if (blas_) cublasDestroy(blas_);
}

template <class Search>
const cublasLtMatmulAlgo_t& Gemm::algorithm(const Key& key, const Search& search) {
    auto it = algos_.find(key);
    if (it != algos_.end()) return it->second;
    Preference pref;
    VIDI_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.d));
    set_pref(pref.d, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(workspace_bytes_));
    return algos_.emplace(key, search(pref.d)).first->second;
}

void Gemm::run(cublasLtMatmulDesc_t op, const void* w, cublasLtMatrixLayout_t a, const void* x,
               cublasLtMatrixLayout_t b, void* y, cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t& algo,
               Epilogue epilogue, cudaStream_t stream) {
    // accumulate: C = y with beta 1 (cuBLASLt reads C before it writes D = y, tile by tile).
    const float alpha = 1.0f, beta = epilogue == Epilogue::accumulate ? 1.0f : 0.0f;
    VIDI_CUBLAS_CHECK(
        cublasLtMatmul(handle_, op, &alpha, w, a, x, b, &beta, y, d, y, d, &algo, workspace_, workspace_bytes_, stream));
}

void Gemm::linear(void* y, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
                  GemmTypes types, cudaStream_t stream, int64_t ldy, Epilogue epilogue) {
    VIDI_CHECK(types.out == types.in || types.out == DType::f32, "GEMM: ", dtype_name(types.in), " inputs with a ",
               dtype_name(types.out), " output");
    if (ldy == 0) ldy = N;
    OpDesc op;
    describe_linear(op, bias, epilogue, types.out);
    // A = w and B = x with leading dimension K; D = y with leading dimension ldy (N unless y is wider).
    Layout a(types.in, K, N, K), b(types.in, K, M, K), d(types.out, N, M, ldy);

    // Up to kRowInvariantRows rows, one algorithm whatever M; alignments count up to 16 bytes
    // there (all a tensor-core kernel asks for), so a prompt's rows inside a larger tensor
    // take the algorithm they take alone.
    const bool invariant = M <= kRowInvariantRows;
    const auto align = [&](const void* p, int64_t row_bytes) {
        const int bytes = alignment(p, row_bytes);
        return invariant ? std::min(bytes, 16) : bytes;
    };
    const int64_t in_size = static_cast<int64_t>(dtype_size(types.in)), out_size = static_cast<int64_t>(dtype_size(types.out));
    const Key key{invariant ? 0 : M, N, K, ldy, bias != nullptr, align(x, K * in_size), align(w, K * in_size),
                  align(y, ldy * out_size), bias ? align(bias, 256) : 256, epilogue, types.in, types.out, -1};
    const auto& algo = algorithm(key, [&](cublasLtMatmulPreference_t pref) {
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(std::get<6>(key)));
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(std::get<5>(key)));
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(std::get<7>(key)));
        set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(std::get<7>(key)));
        // Split-K sums partial products whose split depends on the problem: never in the
        // row-invariant range.
        if (invariant)
            set_pref(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_NONE));
        const int64_t query_rows = invariant ? kRowInvariantQueryRows : M;
        Layout qb(types.in, K, query_rows, K), qd(types.out, N, query_rows, ldy);
        return first_algorithm(handle_, op.d, a.d, qb.d, qd.d, pref, [&] {
            return cat(dtype_name(types.in), " GEMM algorithm for x[", query_rows, ", ", K, "] · w[", N, ", ", K, "]ᵀ",
                       bias ? " + bias" : "", " into ", dtype_name(types.out));
        });
    });
    run(op.d, w, a.d, x, b.d, y, d.d, algo, epilogue, stream);
}

void Gemm::linear_fp8(void* y, const void* xq, const float* sx, const void* wq, const float* sw, const void* bias,
                      int64_t M, int64_t N, int64_t K, DType out, cudaStream_t stream, int64_t ldy, Epilogue epilogue,
                      Fp8Scales scales) {
    VIDI_CHECK(out == DType::bf16 || out == DType::f16, "FP8 GEMM: a ", dtype_name(out), " output (bf16 or f16)");
    VIDI_CHECK(K % 16 == 0, "FP8 GEMM: K = ", K, " is not a multiple of 16");
    if (ldy == 0) ldy = N;
    OpDesc op;
    describe_linear(op, bias, epilogue, out);
    // One scale per row of each operand (A's rows are w's (N), B's columns are x's rows (M)),
    // or cuBLASLt's default, one scalar each.
    if (scales == Fp8Scales::rows) {
        set_desc(op.d, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, static_cast<int32_t>(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F));
        set_desc(op.d, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, static_cast<int32_t>(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F));
    }
    set_desc(op.d, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, static_cast<const void*>(sw));
    set_desc(op.d, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, static_cast<const void*>(sx));
    // Fast accumulation (the tensor cores' partial sums not promoted to f32 after each block of
    // K), as FP8 inference usually runs: 7-17% faster at the media layers' shapes, 1.4e-2 from
    // the promoted sums in the full model's logits (docs/cuda.md, "FP8").
    set_desc(op.d, CUBLASLT_MATMUL_DESC_FAST_ACCUM, static_cast<int8_t>(1));
    Layout a(CUDA_R_8F_E4M3, K, N, K), b(CUDA_R_8F_E4M3, K, M, K), d(out, N, M, ldy);
    const int64_t out_size = static_cast<int64_t>(dtype_size(out));
    // Keyed as linear()'s, the inputs' type u8 (which linear() never takes) marking FP8.
    const Key key{M, N, K, ldy, bias != nullptr, alignment(xq, K), alignment(wq, K), alignment(y, ldy * out_size),
                  bias ? alignment(bias, 256) : 256, epilogue, DType::u8, out, static_cast<int>(scales)};
    const auto& algo = algorithm(key, [&](cublasLtMatmulPreference_t pref) {
        return first_algorithm(handle_, op.d, a.d, b.d, d.d, pref, [&] {
            return cat("FP8 GEMM algorithm with per-", scales == Fp8Scales::rows ? "row" : "tensor", " scales for x[",
                       M, ", ", K, "] · w[", N, ", ", K, "]ᵀ", bias ? " + bias" : "", " into ", dtype_name(out),
                       " on this GPU");
        });
    });
    run(op.d, wq, a.d, xq, b.d, y, d.d, algo, epilogue, stream);
}

void Gemm::batched(void* const* c, DType c_dtype, int64_t ldc, const void* const* a, int64_t lda, const void* const* b,
                   int64_t ldb, DType ab_dtype, bool b_transposed, int64_t M, int64_t N, int64_t K, float alpha,
                   int count, cudaStream_t stream) {
    VIDI_CHECK(c_dtype == ab_dtype || c_dtype == DType::f32, "batched GEMM: output must be ", dtype_name(ab_dtype),
               " or f32");
    // Row-major c = a·op(b) is column-major cᵀ[N, M] = op(b)ᵀ · aᵀ: cuBLAS's A is b (transposed
    // when b is [N, K]), its B is a.
    const float beta = 0.0f;
    VIDI_CUBLAS_CHECK(cublasSetStream(blas_, stream));
    VIDI_CUBLAS_CHECK(cublasGemmBatchedEx(
        blas_, b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
        static_cast<int>(K), &alpha, b, cuda_type(ab_dtype), static_cast<int>(ldb), a, cuda_type(ab_dtype),
        static_cast<int>(lda), &beta, c, cuda_type(c_dtype), static_cast<int>(ldc), count, CUBLAS_COMPUTE_32F,
        CUBLAS_GEMM_DEFAULT));
}

}  // namespace vidi::cuda
