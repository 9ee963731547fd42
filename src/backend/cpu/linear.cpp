// y = x · wᵀ (+ b). The output columns are split into blocks of weight rows, one OpenMP
// task each: f32 weights go straight to a single-threaded sgemm; bf16/f16 weights stay in
// their mapping (and int8/int4 ones in their codes) and each task converts its block into
// a thread-local f32 tile first (a few MiB), so a 20 GB bf16 model never needs an f32 copy. All threading is OpenMP
// (OpenBLAS runs single-threaded inside the tasks): two spinning thread pools taking
// turns were several times slower. Inputs of a few rows (decoding, up to 16 rows of a batch)
// use a fused convert-and-dot kernel instead: there the cost is reading the weights once.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace vidi::cpu {
namespace {

constexpr int64_t kScratchFloats = 1 << 20;  // at most 4 MiB of converted weight rows per task
constexpr int64_t kMinBlockRows = 16;
// Inputs this short skip sgemm. The fused kernel computes each row alone, so the rows of a
// batched decoding step (up to 16) get the bits they get one at a time.
constexpr int64_t kFusedMaxRows = 16;

float dot(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

void fused_small(const float* x, int64_t M, const QTensor& w, float* y, int threads) {
    const int64_t N = w.dim(0), K = w.dim(1);
#pragma omp parallel num_threads(threads)
    {
        std::vector<float> row(static_cast<size_t>(K));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            weight_rows_f32(w, n, 1, row.data());
            for (int64_t m = 0; m < M; ++m) y[m * N + n] = dot(x + m * K, row.data(), K);
        }
    }
}

// y[:, n0:n0+nb] = x · w[n0:n0+nb]ᵀ for every block, blocks spread over the threads.
void blocked_gemm(const float* x, int64_t M, const QTensor& w, float* y, int threads) {
    const int64_t N = w.dim(0), K = w.dim(1);
    // Enough blocks to keep every thread busy, each small enough for a thread-local tile.
    const int64_t by_threads = (N + 2 * threads - 1) / (2 * threads);
    const int64_t block = std::max<int64_t>(1, std::min({N, std::max(kMinBlockRows, by_threads), std::max<int64_t>(1, kScratchFloats / K)}));
    const int64_t blocks = (N + block - 1) / block;
    const bool f32 = !w.quantized() && w.values.dtype() == DType::f32;
#pragma omp parallel num_threads(threads)
    {
        std::vector<float> tile(f32 ? 0 : static_cast<size_t>(block * K));
#pragma omp for schedule(dynamic, 1)
        for (int64_t bi = 0; bi < blocks; ++bi) {
            const int64_t n0 = bi * block, nb = std::min(block, N - n0);
            const float* wb = f32 ? w.values.data<float>() + n0 * K : tile.data();
            if (!f32) weight_rows_f32(w, n0, nb, tile.data());
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(nb),
                        static_cast<int>(K), 1.0f, x, static_cast<int>(K), wb, static_cast<int>(K), 0.0f, y + n0,
                        static_cast<int>(N));
        }
    }
}

}  // namespace

Tensor CpuBackend::linear(const Tensor& x, const QTensor& w, const Tensor& bias) {
    require_f32_host(x, "linear", "input");
    if (w.quantized())
        VIDI_CHECK(w.values.on_host() && w.scales.on_host(), "linear: weight ", w.describe(), " is not in host memory");
    else
        require_float_host(w.values, "linear", "weight");
    VIDI_CHECK(w.rank() == 2, "linear: weight must be [N, K], got ", w.describe());
    const int64_t N = w.dim(0), K = w.dim(1);
    VIDI_CHECK(x.rank() >= 1 && x.dim(-1) == K, "linear: input ", x.describe(), " does not match weight ",
               w.describe());
    Tensor b;
    if (bias.defined()) {
        require_float_host(bias, "linear", "bias");
        VIDI_CHECK(bias.numel() == N, "linear: bias ", bias.describe(), " does not match weight ", w.describe());
        b = as_f32(bias);
    }
    Shape out_shape = x.shape();
    out_shape.back() = N;
    Tensor y = Tensor::empty(out_shape, DType::f32);
    const int64_t M = K ? x.numel() / K : 0;
    if (M == 0 || N == 0) return y;
    const float* xp = x.data<float>();
    float* yp = y.data<float>();

    if (K == 0) {
        // empty reduction: y = 0 (+ bias below)
    } else if (M <= kFusedMaxRows) {
        fused_small(xp, M, w, yp, threads_);
    } else {
        blocked_gemm(xp, M, w, yp, threads_);
    }
    if (b.defined()) {
        const float* bp = b.data<float>();
#pragma omp parallel for num_threads(threads_) schedule(static)
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) yp[m * N + n] += bp[n];
    }
    return y;
}

}  // namespace vidi::cpu
