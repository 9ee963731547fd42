// y = x · wᵀ (+ b). f32 weights go straight to sgemm; bf16/f16 weights stay in their
// mapping and are converted block by block (a few MiB of f32 at a time), so a 20 GB bf16
// model never needs an f32 copy. Single-row inputs (decoding) use a fused
// convert-and-dot kernel instead: there the cost is reading the weights once.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace vidi::cpu {
namespace {

constexpr int64_t kScratchFloats = 1 << 20;  // 4 MiB of converted weight rows per block
constexpr int64_t kFusedMaxRows = 4;         // inputs this short skip sgemm

float dot(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

void convert_rows(const Tensor& w, int64_t row0, int64_t nrows, float* dst, int threads) {
    const int64_t K = w.dim(1);
    const char* base = static_cast<const char*>(w.raw()) + row0 * K * static_cast<int64_t>(dtype_size(w.dtype()));
    const size_t esize = dtype_size(w.dtype());
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < nrows; ++r)
        convert_to_f32(base + r * K * static_cast<int64_t>(esize), w.dtype(), dst + r * K, static_cast<size_t>(K));
}

void fused_small(const float* x, int64_t M, const Tensor& w, float* y, int threads) {
    const int64_t N = w.dim(0), K = w.dim(1);
    const char* base = static_cast<const char*>(w.raw());
    const size_t esize = dtype_size(w.dtype());
#pragma omp parallel num_threads(threads)
    {
        std::vector<float> row(static_cast<size_t>(K));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            convert_to_f32(base + n * K * static_cast<int64_t>(esize), w.dtype(), row.data(), static_cast<size_t>(K));
            for (int64_t m = 0; m < M; ++m) y[m * N + n] = dot(x + m * K, row.data(), K);
        }
    }
}

}  // namespace

Tensor CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
    require_f32_host(x, "linear", "input");
    require_float_host(w, "linear", "weight");
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
    } else if (w.dtype() == DType::f32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                    static_cast<int>(K), 1.0f, xp, static_cast<int>(K), w.data<float>(), static_cast<int>(K), 0.0f, yp,
                    static_cast<int>(N));
    } else if (M <= kFusedMaxRows) {
        fused_small(xp, M, w, yp, threads_);
    } else {
        const int64_t block = std::clamp<int64_t>(kScratchFloats / K, 16, N);
        std::vector<float> scratch(static_cast<size_t>(block * K));
        for (int64_t n0 = 0; n0 < N; n0 += block) {
            const int64_t nb = std::min(block, N - n0);
            convert_rows(w, n0, nb, scratch.data(), threads_);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(nb),
                        static_cast<int>(K), 1.0f, xp, static_cast<int>(K), scratch.data(), static_cast<int>(K), 0.0f,
                        yp + n0, static_cast<int>(N));
        }
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
