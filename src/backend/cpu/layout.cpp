// Data-movement ops: gathers, transposes and the re-layouts that turn convolutions into
// GEMMs, the grid padding/resizing of the visual-token path, frames to pixels and audio
// samples to log-mel features.
#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "core/log_mel.h"
#include "core/pil_resize.h"
#include "core/sinusoid.h"

namespace vidi::cpu {

Tensor CpuBackend::embed(const QTensor& table, const Tensor& ids) {
    if (!table.quantized()) require_float_host(table.values, "embed", "table");
    VIDI_CHECK(table.rank() == 2, "embed: table must be [V, D], got ", table.describe());
    VIDI_CHECK(ids.defined() && ids.on_host() && ids.dtype() == DType::i32 && ids.rank() == 1,
               "embed: ids must be i32 [T] in host memory, got ", ids.describe());
    const int64_t V = table.dim(0), D = table.dim(1), T = ids.numel();
    const int32_t* id = ids.data<int32_t>();
    check_token_ids(id, T, V, "embed");
    Tensor out = Tensor::empty({T, D}, DType::f32);
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t t = 0; t < T; ++t) weight_rows_f32(table, id[t], 1, out.data<float>() + t * D);
    return out;
}

Tensor CpuBackend::transpose2d(const Tensor& x) {
    require_f32_host(x, "transpose2d", "x");
    VIDI_CHECK(x.rank() == 2, "transpose2d: expected [A, B], got ", x.describe());
    const int64_t A = x.dim(0), B = x.dim(1);
    Tensor y = Tensor::empty({B, A}, DType::f32);
    const float* s = x.data<float>();
    float* d = y.data<float>();
    constexpr int64_t tile = 32;  // cache-friendly blocks
#pragma omp parallel for collapse(2) num_threads(threads_) schedule(static)
    for (int64_t a0 = 0; a0 < A; a0 += tile)
        for (int64_t b0 = 0; b0 < B; b0 += tile)
            for (int64_t a = a0; a < std::min(A, a0 + tile); ++a)
                for (int64_t b = b0; b < std::min(B, b0 + tile); ++b) d[b * A + a] = s[a * B + b];
    return y;
}

Tensor CpuBackend::im2col_1d(const Tensor& x, int k, int stride, int pad) {
    require_f32_host(x, "im2col_1d", "x");
    VIDI_CHECK(x.rank() == 2, "im2col_1d: expected x[T, C], got ", x.describe());
    VIDI_CHECK(k > 0 && stride > 0 && pad >= 0, "im2col_1d: bad kernel ", k, ", stride ", stride, ", pad ", pad);
    const int64_t T = x.dim(0), C = x.dim(1);
    const int64_t span = T + 2 * pad - k;
    const int64_t To = span >= 0 ? span / stride + 1 : 0;
    Tensor y = Tensor::empty({To, C * k}, DType::f32);
    const float* s = x.data<float>();
    float* d = y.data<float>();
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t t = 0; t < To; ++t) {
        float* row = d + t * C * k;
        for (int64_t j = 0; j < k; ++j) {
            const int64_t src = t * stride + j - pad;
            const bool inside = src >= 0 && src < T;
            for (int64_t c = 0; c < C; ++c) row[c * k + j] = inside ? s[src * C + c] : 0.0f;
        }
    }
    return y;
}

Tensor CpuBackend::im2col_2d(const Tensor& x, int k, int stride) {
    require_f32_host(x, "im2col_2d", "x");
    VIDI_CHECK(x.rank() == 4, "im2col_2d: expected x[F, H, W, C], got ", x.describe());
    VIDI_CHECK(k > 0 && stride > 0 && k <= x.dim(1) && k <= x.dim(2), "im2col_2d: kernel ", k, " / stride ", stride,
               " does not fit ", x.describe());
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    const int64_t Ho = (H - k) / stride + 1, Wo = (W - k) / stride + 1, width = C * k * k;
    Tensor y = Tensor::empty({F, Ho, Wo, width}, DType::f32);
    const float* s = x.data<float>();
    float* d = y.data<float>();
#pragma omp parallel for collapse(3) num_threads(threads_) schedule(static)
    for (int64_t f = 0; f < F; ++f)
        for (int64_t oy = 0; oy < Ho; ++oy)
            for (int64_t ox = 0; ox < Wo; ++ox) {
                float* row = d + ((f * Ho + oy) * Wo + ox) * width;
                for (int64_t ky = 0; ky < k; ++ky)
                    for (int64_t kx = 0; kx < k; ++kx) {
                        const float* src = s + ((f * H + oy * stride + ky) * W + ox * stride + kx) * C;
                        for (int64_t c = 0; c < C; ++c) row[(c * k + ky) * k + kx] = src[c];
                    }
            }
    return y;
}

Tensor CpuBackend::patchify(const Tensor& pixels, int p) {
    require_f32_host(pixels, "patchify", "pixels");
    VIDI_CHECK(pixels.rank() == 4 && pixels.dim(2) == pixels.dim(3), "patchify: expected pixels[N, C, S, S], got ",
               pixels.describe());
    VIDI_CHECK(p > 0 && p <= pixels.dim(2), "patchify: bad patch size ", p, " for ", pixels.describe());
    const int64_t N = pixels.dim(0), C = pixels.dim(1), S = pixels.dim(2), G = S / p;  // like a stride-p Conv2d
    Tensor y = Tensor::empty({N, G * G, C * p * p}, DType::f32);
    const float* s = pixels.data<float>();
    float* d = y.data<float>();
#pragma omp parallel for collapse(2) num_threads(threads_) schedule(static)
    for (int64_t n = 0; n < N; ++n)
        for (int64_t g = 0; g < G * G; ++g) {
            const int64_t py = g / G, px = g % G;
            float* row = d + (n * G * G + g) * C * p * p;
            for (int64_t c = 0; c < C; ++c)
                for (int64_t ky = 0; ky < p; ++ky)
                    std::memcpy(row + (c * p + ky) * p, s + ((n * C + c) * S + py * p + ky) * S + px * p,
                                static_cast<size_t>(p) * 4);
        }
    return y;
}

Tensor CpuBackend::space_to_depth(const Tensor& x, int p) {
    require_f32_host(x, "space_to_depth", "x");
    VIDI_CHECK(x.rank() == 4, "space_to_depth: expected x[F, H, W, C], got ", x.describe());
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(p > 0 && H % p == 0 && W % p == 0, "space_to_depth: grid ", H, "x", W, " is not divisible by ", p);
    const int64_t h = H / p, w = W / p;
    Tensor y = Tensor::empty({F, h, w, C * p * p}, DType::f32);
    const float* s = x.data<float>();
    float* d = y.data<float>();
#pragma omp parallel for collapse(3) num_threads(threads_) schedule(static)
    for (int64_t f = 0; f < F; ++f)
        for (int64_t ty = 0; ty < h; ++ty)
            for (int64_t tx = 0; tx < w; ++tx) {
                float* row = d + ((f * h + ty) * w + tx) * C * p * p;
                for (int64_t dy = 0; dy < p; ++dy)
                    for (int64_t dx = 0; dx < p; ++dx) {
                        const float* src = s + ((f * H + ty * p + dy) * W + tx * p + dx) * C;
                        for (int64_t c = 0; c < C; ++c) row[c * p * p + dy * p + dx] = src[c];
                    }
            }
    return y;
}

Tensor CpuBackend::pad_grid(const Tensor& x, int bottom, int right) {
    require_f32_host(x, "pad_grid", "x");
    VIDI_CHECK(x.rank() == 4, "pad_grid: expected x[F, H, W, C], got ", x.describe());
    VIDI_CHECK(bottom >= 0 && right >= 0, "pad_grid: negative padding");
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    const int64_t Ho = H + bottom, Wo = W + right;
    Tensor y = Tensor::empty({F, Ho, Wo, C}, DType::f32);  // zero-filled
    const float* s = x.data<float>();
    float* d = y.data<float>();
#pragma omp parallel for collapse(2) num_threads(threads_) schedule(static)
    for (int64_t f = 0; f < F; ++f)
        for (int64_t r = 0; r < H; ++r)
            std::memcpy(d + (f * Ho + r) * Wo * C, s + (f * H + r) * W * C, static_cast<size_t>(W * C) * 4);
    return y;
}

namespace {

// PyTorch's linear source index (upsample_bilinear2d on the CPU, f32). align_corners=false:
// src = (dst + 0.5)·(in/out) − 0.5, clamped below at 0; true: src = dst·(in − 1)/(out − 1).
// The upper neighbour is clamped to in − 1.
struct Tap {
    int64_t i0, i1;
    float w0, w1;
};

std::vector<Tap> linear_taps(int64_t in, int64_t out, bool align_corners) {
    std::vector<Tap> taps(static_cast<size_t>(out));
    const float scale = align_corners ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f)
                                      : static_cast<float>(in) / static_cast<float>(out);
    for (int64_t o = 0; o < out; ++o) {
        float src = align_corners ? scale * static_cast<float>(o) : scale * (static_cast<float>(o) + 0.5f) - 0.5f;
        if (src < 0) src = 0;
        const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
        const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
        const float l1 = src - static_cast<float>(i0);
        taps[o] = {i0, i1, 1.0f - l1, l1};
    }
    return taps;
}

}  // namespace

Tensor CpuBackend::resize_bilinear(const Tensor& x, int oh, int ow, bool align_corners) {
    require_f32_host(x, "resize_bilinear", "x");
    VIDI_CHECK(x.rank() == 4, "resize_bilinear: expected x[F, H, W, C], got ", x.describe());
    VIDI_CHECK(oh > 0 && ow > 0, "resize_bilinear: bad output size ", oh, "x", ow);
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(H > 0 && W > 0, "resize_bilinear: empty input grid ", x.describe());
    const std::vector<Tap> ty = linear_taps(H, oh, align_corners), tx = linear_taps(W, ow, align_corners);
    Tensor y = Tensor::empty({F, oh, ow, C}, DType::f32);
    const float* s = x.data<float>();
    float* d = y.data<float>();
#pragma omp parallel for collapse(3) num_threads(threads_) schedule(static)
    for (int64_t f = 0; f < F; ++f)
        for (int64_t r = 0; r < oh; ++r)
            for (int64_t c = 0; c < ow; ++c) {
                const Tap a = ty[r], b = tx[c];
                const float* p00 = s + ((f * H + a.i0) * W + b.i0) * C;
                const float* p01 = s + ((f * H + a.i0) * W + b.i1) * C;
                const float* p10 = s + ((f * H + a.i1) * W + b.i0) * C;
                const float* p11 = s + ((f * H + a.i1) * W + b.i1) * C;
                float* o = d + ((f * oh + r) * ow + c) * C;
                for (int64_t ch = 0; ch < C; ++ch)
                    o[ch] = a.w0 * (b.w0 * p00[ch] + b.w1 * p01[ch]) + a.w1 * (b.w0 * p10[ch] + b.w1 * p11[ch]);
            }
    return y;
}

Tensor CpuBackend::frames_to_pixels(const Tensor& rgb, int size) {
    check_frames_to_pixels(rgb, size);
    const int64_t n = rgb.dim(0);
    Tensor out = Tensor::empty({n, 3, size, size}, DType::f32);
    frames_to_pixels_f32(rgb.data<uint8_t>(), n, static_cast<int>(rgb.dim(1)), static_cast<int>(rgb.dim(2)), size,
                         out.data<float>());
    return out;
}

Tensor CpuBackend::sinusoid(const std::vector<double>& positions, int64_t dim) {
    return sinusoid_table(positions, dim);
}

Tensor CpuBackend::log_mel(const Tensor& pcm, int n_mels) {
    check_log_mel(pcm, n_mels);
    return log_mel_pieces(pcm.data<float>(), pcm.numel(), n_mels);
}

}  // namespace vidi::cpu
