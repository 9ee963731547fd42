// Gathers and re-layouts: exact copies of the input values, checked element by element
// against the index formulas of backend.h; resize against PyTorch's bilinear formula;
// frames to pixels byte for byte against the host's Pillow resize; log-mel against the
// host's double-precision log-mel.
#include <cmath>

#include "core/log_mel.h"
#include "core/pil_resize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaLayout : public CudaDtypes {};

TEST_P(CudaLayout, EmbedGathersRows) {
    const int64_t V = 50, D = 24;
    const Tensor table = random_host({V, D});
    const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
    const std::vector<double> tv = as_doubles(table);
    std::vector<double> ref;
    for (int32_t id : ids) ref.insert(ref.end(), tv.begin() + id * D, tv.begin() + (id + 1) * D);
    const Tensor w = backend().weight(table);
    const Tensor out = backend().embed(w, ids);
    EXPECT_EQ(out.shape(), (Shape{5, D}));
    expect_equal(out, ref, "embed");
    EXPECT_THROW(backend().embed(w, {1, 50}), Error);
    EXPECT_THROW(backend().embed(w, {-1}), Error);
}

TEST_P(CudaLayout, Transpose2dBf16AndF32) {
    for (auto [A, B] : {std::pair<int64_t, int64_t>{37, 70}, {1, 5}, {64, 32}, {129, 3}}) {
        const Tensor h = random_host({A, B});
        const std::vector<double> v = as_doubles(h);
        std::vector<double> ref(v.size());
        for (int64_t a = 0; a < A; ++a)
            for (int64_t b = 0; b < B; ++b) ref[b * A + a] = v[a * B + b];
        const Tensor t = backend().transpose2d(dev(h));
        EXPECT_EQ(t.shape(), (Shape{B, A}));
        expect_equal(t, ref, cat("transpose2d ", dtype_name(act()), " ", A, "x", B));
        Tensor f = backend().empty({A, B}, DType::f32);
        backend().copy_(f, h);
        const Tensor tf = backend().transpose2d(f);
        EXPECT_EQ(tf.dtype(), DType::f32);
        expect_equal(tf, ref, cat("transpose2d f32 ", A, "x", B));
    }
}

TEST_P(CudaLayout, Im2col1d) {
    struct Case {
        int64_t T, C;
        int k, stride, pad;
    };
    for (const Case c : {Case{20, 5, 3, 2, 1}, Case{16, 4, 3, 1, 1}, Case{9, 2, 9, 1, 0}, Case{11, 3, 4, 3, 2}}) {
        const Tensor h = random_host({c.T, c.C});
        const std::vector<double> v = as_doubles(h);
        const int64_t T_out = (c.T + 2 * c.pad - c.k) / c.stride + 1;
        std::vector<double> ref;
        for (int64_t t = 0; t < T_out; ++t)
            for (int64_t ch = 0; ch < c.C; ++ch)
                for (int j = 0; j < c.k; ++j) {
                    const int64_t src = t * c.stride + j - c.pad;
                    ref.push_back(src >= 0 && src < c.T ? v[src * c.C + ch] : 0.0);
                }
        const Tensor out = backend().im2col_1d(dev(h), c.k, c.stride, c.pad);
        EXPECT_EQ(out.shape(), (Shape{T_out, c.C * c.k}));
        expect_equal(out, ref, cat("im2col_1d T=", c.T, " k=", c.k, " stride=", c.stride, " pad=", c.pad));
    }
}

TEST_P(CudaLayout, Patchify) {
    const int64_t N = 2, C = 3, S = 31;  // 2 whole patches a side, 3 leftover pixels dropped (as 384/14)
    const int p = 14, g = S / p;
    const Tensor h = random_host({N, C, S, S});
    const std::vector<double> v = as_doubles(h);
    std::vector<double> ref;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t py = 0; py < g; ++py)
            for (int64_t px = 0; px < g; ++px)
                for (int64_t c = 0; c < C; ++c)
                    for (int ky = 0; ky < p; ++ky)
                        for (int kx = 0; kx < p; ++kx)
                            ref.push_back(v[((n * C + c) * S + py * p + ky) * S + px * p + kx]);
    const Tensor out = backend().patchify(dev(h), p);
    EXPECT_EQ(out.shape(), (Shape{N, g * g, C * p * p}));
    expect_equal(out, ref, "patchify");
    EXPECT_THROW(backend().patchify(dev(random_host({1, 3, 10, 10})), 14), Error);  // smaller than a patch
    EXPECT_THROW(backend().patchify(dev(random_host({1, 3, 28, 14})), 14), Error);  // not square
}

TEST_P(CudaLayout, SpaceToDepthAndPadGrid) {
    const int64_t F = 2, H = 6, W = 4, C = 3;
    const int p = 2;
    const Tensor h = random_host({F, H, W, C});
    const std::vector<double> v = as_doubles(h);
    std::vector<double> ref;
    for (int64_t f = 0; f < F; ++f)
        for (int64_t y = 0; y < H / p; ++y)
            for (int64_t x = 0; x < W / p; ++x)
                for (int64_t c = 0; c < C; ++c)
                    for (int dy = 0; dy < p; ++dy)
                        for (int dx = 0; dx < p; ++dx) ref.push_back(v[((f * H + y * p + dy) * W + x * p + dx) * C + c]);
    const Tensor s2d = backend().space_to_depth(dev(h), p);
    EXPECT_EQ(s2d.shape(), (Shape{F, H / p, W / p, C * p * p}));
    expect_equal(s2d, ref, "space_to_depth");

    std::vector<double> pad_ref;
    for (int64_t f = 0; f < F; ++f)
        for (int64_t y = 0; y < H + 1; ++y)
            for (int64_t x = 0; x < W + 3; ++x)
                for (int64_t c = 0; c < C; ++c) pad_ref.push_back(y < H && x < W ? v[((f * H + y) * W + x) * C + c] : 0.0);
    const Tensor padded = backend().pad_grid(dev(h), 1, 3);
    EXPECT_EQ(padded.shape(), (Shape{F, H + 1, W + 3, C}));
    expect_equal(padded, pad_ref, "pad_grid");
    EXPECT_THROW(backend().space_to_depth(dev(random_host({1, 5, 4, 2})), 2), Error);
}

// PyTorch F.interpolate(mode='bilinear', align_corners=False) for one axis.
void source(int64_t dst, int64_t in, int64_t out, int64_t& i0, int64_t& i1, double& frac) {
    double s = (dst + 0.5) * double(in) / double(out) - 0.5;
    if (s < 0) s = 0;
    i0 = std::min<int64_t>(static_cast<int64_t>(s), in - 1);
    i1 = std::min<int64_t>(i0 + 1, in - 1);
    frac = s - double(i0);
}

TEST_P(CudaLayout, ResizeBilinearMatchesPyTorchFormula) {
    struct Case {
        int64_t F, H, W, C;
        int oh, ow;
    };
    for (const Case c : {Case{2, 9, 13, 3, 5, 20}, Case{1, 9, 13, 3, 16, 7}, Case{3, 4, 4, 8, 4, 4},
                         Case{1, 1, 5, 2, 3, 2}}) {
        const Tensor h = random_host({c.F, c.H, c.W, c.C}, 0.0f, 1.0f);
        const std::vector<double> v = as_doubles(h);
        std::vector<double> ref;
        for (int64_t f = 0; f < c.F; ++f)
            for (int64_t oy = 0; oy < c.oh; ++oy)
                for (int64_t ox = 0; ox < c.ow; ++ox)
                    for (int64_t ch = 0; ch < c.C; ++ch) {
                        int64_t y0, y1, x0, x1;
                        double ly, lx;
                        source(oy, c.H, c.oh, y0, y1, ly);
                        source(ox, c.W, c.ow, x0, x1, lx);
                        auto at = [&](int64_t y, int64_t x) { return v[((f * c.H + y) * c.W + x) * c.C + ch]; };
                        ref.push_back((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
                                      ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)));
                    }
        const Tensor out = backend().resize_bilinear(dev(h), c.oh, c.ow);
        EXPECT_EQ(out.shape(), (Shape{c.F, c.oh, c.ow, c.C}));
        expect_close(out, ref, tol(), cat("resize ", c.H, "x", c.W, " -> ", c.oh, "x", c.ow));
    }
}

TEST_P(CudaLayout, RepeatKv) {
    const int64_t T = 5, KV = 2, hd = 24;
    const int H = 6;
    const Tensor h = random_host({T, KV, hd});
    const std::vector<double> v = as_doubles(h);
    std::vector<double> ref;
    for (int64_t t = 0; t < T; ++t)
        for (int hh = 0; hh < H; ++hh)
            for (int64_t d = 0; d < hd; ++d) ref.push_back(v[(t * KV + hh / (H / KV)) * hd + d]);
    const Tensor out = backend().repeat_kv(dev(h), H);
    EXPECT_EQ(out.shape(), (Shape{T, H, hd}));
    expect_equal(out, ref, "repeat_kv");
    EXPECT_THROW(backend().repeat_kv(dev(h), 5), Error);
}

// The GPU's resize of frames equals the host's (Pillow's) exactly: same bytes, then the same
// f32 normalised value rounded to the activation dtype. Downscales, upscales, an axis left
// alone, odd sizes.
TEST_P(CudaLayout, FramesToPixelsEqualTheHostResize) {
    struct Case {
        int64_t n;
        int h, w, size;
    } cases[] = {{3, 720, 1280, 384}, {2, 19, 37, 24}, {1, 500, 384, 384}, {2, 384, 384, 384}, {1, 1, 1, 5}};
    for (const Case& c : cases) {
        Tensor rgb = Tensor::empty({c.n, c.h, c.w, 3}, DType::u8);
        std::uniform_int_distribution<int> byte(0, 255);
        for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(byte(rng()));
        Tensor host = Tensor::empty({c.n, 3, c.size, c.size}, DType::f32);
        frames_to_pixels_f32(rgb.data<uint8_t>(), c.n, c.h, c.w, c.size, host.data<float>());
        std::vector<double> ref;
        for (int64_t i = 0; i < host.numel(); ++i) ref.push_back(round_act(host.data<float>()[i]));
        const Tensor out = backend().frames_to_pixels(rgb, c.size);
        ASSERT_EQ(out.shape(), (Shape{c.n, 3, c.size, c.size}));
        expect_equal(out, ref, cat("frames_to_pixels ", c.h, "x", c.w, " -> ", c.size));
    }
    EXPECT_THROW(backend().frames_to_pixels(Tensor::empty({1, 4, 4, 4}, DType::u8), 8), Error);  // not RGB
    EXPECT_THROW(backend().frames_to_pixels(Tensor::empty({1, 4, 4, 3}, DType::f32), 8), Error);
}

// Both compute in double (cuFFT here, our FFT there): the f32 features agree to rounding, and
// the 16-bit output is the host's value rounded, but for rare ties.
TEST_P(CudaLayout, LogMelMatchesTheHost) {
    const int64_t n = 2 * kPieceSamples + 54321;  // a partial third piece
    Tensor pcm = Tensor::empty({n}, DType::f32);
    std::normal_distribution<float> noise(0.0f, 0.05f);
    for (int64_t i = 0; i < n; ++i)
        pcm.data<float>()[i] = static_cast<float>(0.4 * std::sin(0.003 * i) * std::sin(1e-5 * i)) + noise(rng());
    for (int bins : {128, 80}) {
        const Tensor host = log_mel_pieces(pcm.data<float>(), n, bins);
        std::vector<double> ref;
        for (int64_t i = 0; i < host.numel(); ++i) ref.push_back(round_act(host.data<float>()[i]));
        const Tensor out = backend().log_mel(pcm, bins);
        ASSERT_EQ(out.shape(), (Shape{3, bins, kMelFrames}));
        expect_close(out, ref, 1e-5, cat("log_mel, ", bins, " bins"));
    }
    EXPECT_THROW(backend().log_mel(Tensor::empty({4}, DType::bf16), 80), Error);
}

VIDI_CUDA_DTYPES(CudaLayout);

}  // namespace
}  // namespace vidi::cuda::test
