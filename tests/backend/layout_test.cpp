// Gathers and re-layouts: exact copies of the input values against the index formulas of
// backend.h, and checked through what they are for (im2col + linear is a Conv1d, patchify +
// linear a strided Conv2d); resize against PyTorch's bilinear definition; frames to pixels
// byte for byte against the host's Pillow resize; log-mel against the host's log-mel.
#include <cmath>

#include "backend/backend_test.h"
#include "core/log_mel.h"
#include "core/pil_resize.h"

using namespace vidi;
using namespace vidi::test;

namespace {

class Layout : public BackendTest {
protected:
    QTensor weight(const Tensor& host_w) const { return be().linear_weight(QTensor(host_w)); }
};

TEST_P(Layout, EmbedGathersRows) {
    const int64_t V = 50, D = 24;
    const Tensor table = random_host({V, D});
    const std::vector<int32_t> ids = {3, 0, 49, 3, 17};
    const std::vector<double> tv = values(table);
    std::vector<double> ref;
    for (int32_t id : ids) ref.insert(ref.end(), tv.begin() + id * D, tv.begin() + (id + 1) * D);
    const QTensor w = weight(table);
    const Tensor out = be().embed(w, ids);
    EXPECT_EQ(out.shape(), (Shape{5, D}));
    expect_equal(out, ref, "embed");
    // The same ids as a tensor on the backend (a recorded step's input).
    expect_equal(be().embed(w, dev(Tensor::from_vector(ids))), ref, "embed of an id tensor");
    EXPECT_THROW(be().embed(w, {1, 50}), Error);
    EXPECT_THROW(be().embed(w, {-1}), Error);
}

TEST(LayoutOnTheCpu, EmbedChecksAnIdTensorItReads) {
    // The CPU reads the ids from host memory and checks them (a GPU gives a row of zeros).
    Backend& be = shared_backend(BackendKind::cpu);
    const Tensor table = random_tensor({10, 6}, DType::bf16, 1);
    EXPECT_THROW(be.embed(table, Tensor::from_vector(std::vector<int32_t>{10})), Error);
    EXPECT_THROW(be.embed(table, Tensor::from_vector(std::vector<int64_t>{3})), Error);
}

TEST_P(Layout, TransposeActivationsAndF32) {
    for (auto [A, B] : {std::pair<int64_t, int64_t>{37, 70}, {1, 5}, {64, 32}, {129, 3}, {37, 45}}) {
        const Tensor h = random_host({A, B});
        const std::vector<double> v = values(h);
        std::vector<double> ref(v.size());
        for (int64_t a = 0; a < A; ++a)
            for (int64_t b = 0; b < B; ++b) ref[b * A + a] = v[a * B + b];
        const Tensor t = be().transpose2d(dev(h));
        EXPECT_EQ(t.shape(), (Shape{B, A}));
        expect_equal(t, ref, cat("transpose2d ", A, "x", B));
        Tensor f = be().empty({A, B}, DType::f32);
        be().copy_(f, dev(h));
        const Tensor tf = be().transpose2d(f);
        EXPECT_EQ(tf.dtype(), DType::f32);
        expect_equal(tf, ref, cat("transpose2d f32 ", A, "x", B));
    }
}

TEST_P(Layout, Im2col1dGathers) {
    struct Case {
        int64_t T, C;
        int k, stride, pad;
    };
    for (const Case c : {Case{20, 5, 3, 2, 1}, Case{16, 4, 3, 1, 1}, Case{9, 2, 9, 1, 0}, Case{11, 3, 4, 3, 2}}) {
        const Tensor h = random_host({c.T, c.C});
        const std::vector<double> v = values(h);
        const int64_t T_out = (c.T + 2 * c.pad - c.k) / c.stride + 1;
        std::vector<double> ref;
        for (int64_t t = 0; t < T_out; ++t)
            for (int64_t ch = 0; ch < c.C; ++ch)
                for (int j = 0; j < c.k; ++j) {
                    const int64_t src = t * c.stride + j - c.pad;
                    ref.push_back(src >= 0 && src < c.T ? v[src * c.C + ch] : 0.0);
                }
        const Tensor out = be().im2col_1d(dev(h), c.k, c.stride, c.pad);
        EXPECT_EQ(out.shape(), (Shape{T_out, c.C * c.k}));
        expect_equal(out, ref, cat("im2col_1d T=", c.T, " k=", c.k, " stride=", c.stride, " pad=", c.pad));
    }
}

TEST_P(Layout, Im2colLinearIsConv1d) {
    struct C {
        int64_t T, Cin, Cout;
        int k, stride, pad;
    };
    for (C c : {C{30, 5, 7, 3, 1, 1}, C{30, 5, 7, 3, 2, 1}, C{23, 4, 6, 5, 5, 0}, C{3, 2, 3, 3, 2, 1}}) {
        const Tensor x = random_host({c.T, c.Cin});
        const Tensor w = random_host({c.Cout, c.Cin, c.k});  // PyTorch Conv1d layout
        const Tensor b = random_host({c.Cout});
        const int64_t To = (c.T + 2 * c.pad - c.k) / c.stride + 1;
        const std::vector<double> xv = values(x), wv = values(w), bv = values(b);
        std::vector<double> ref(static_cast<size_t>(To * c.Cout));
        for (int64_t t = 0; t < To; ++t)
            for (int64_t o = 0; o < c.Cout; ++o) {
                double s = bv[o];
                for (int64_t i = 0; i < c.Cin; ++i)
                    for (int64_t j = 0; j < c.k; ++j) {
                        const int64_t src = t * c.stride + j - c.pad;
                        if (src >= 0 && src < c.T) s += wv[(o * c.Cin + i) * c.k + j] * xv[src * c.Cin + i];
                    }
                ref[t * c.Cout + o] = s;
            }
        const Tensor cols = be().im2col_1d(dev(x), c.k, c.stride, c.pad);
        ASSERT_EQ(cols.shape(), (Shape{To, c.Cin * c.k}));
        expect_close(be().linear(cols, weight(w.reshape({c.Cout, c.Cin * c.k})), dev(b)), ref, tol(1e-6),
                     cat("conv1d T=", c.T, " k=", c.k, " stride=", c.stride));
    }
}

TEST_P(Layout, PatchifyGathers) {
    const int64_t N = 2, C = 3, S = 31;  // 2 whole patches a side, 3 leftover pixels dropped (as 384/14)
    const int p = 14, g = S / p;
    const Tensor h = random_host({N, C, S, S});
    const std::vector<double> v = values(h);
    std::vector<double> ref;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t py = 0; py < g; ++py)
            for (int64_t px = 0; px < g; ++px)
                for (int64_t c = 0; c < C; ++c)
                    for (int ky = 0; ky < p; ++ky)
                        for (int kx = 0; kx < p; ++kx)
                            ref.push_back(v[((n * C + c) * S + py * p + ky) * S + px * p + kx]);
    const Tensor out = be().patchify(dev(h), p);
    EXPECT_EQ(out.shape(), (Shape{N, g * g, C * p * p}));
    expect_equal(out, ref, "patchify");
    EXPECT_THROW(be().patchify(dev(random_host({1, 3, 10, 10})), 14), Error);  // smaller than a patch
    EXPECT_THROW(be().patchify(dev(random_host({1, 3, 28, 14})), 14), Error);  // not square
}

TEST_P(Layout, PatchifyLinearIsStridedConv2d) {
    const int64_t N = 2, C = 3, S = 30, p = 7, G = S / p, Cout = 5;  // 30 = 4·7 + 2 leftover pixels
    const Tensor px = random_host({N, C, S, S}), w = random_host({Cout, C, p, p});
    const std::vector<double> xv = values(px), wv = values(w);
    std::vector<double> ref(static_cast<size_t>(N * G * G * Cout));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t py = 0; py < G; ++py)
            for (int64_t pxx = 0; pxx < G; ++pxx)
                for (int64_t o = 0; o < Cout; ++o) {
                    double s = 0;
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t ky = 0; ky < p; ++ky)
                            for (int64_t kx = 0; kx < p; ++kx)
                                s += wv[((o * C + c) * p + ky) * p + kx] *
                                     xv[((n * C + c) * S + py * p + ky) * S + pxx * p + kx];
                    ref[((n * G + py) * G + pxx) * Cout + o] = s;
                }
    const Tensor cols = be().patchify(dev(px), static_cast<int>(p));
    ASSERT_EQ(cols.shape(), (Shape{N, G * G, C * p * p}));
    expect_close(be().linear(cols, weight(w.reshape({Cout, C * p * p}))), ref, tol(1e-6), "conv2d by patches");
}

TEST_P(Layout, SpaceToDepthIsChannelMajorAndPadGridAddsZeros) {
    const int64_t F = 2, H = 6, W = 4, C = 3;
    const int p = 2;
    const Tensor h = random_host({F, H, W, C});
    const std::vector<double> v = values(h);
    std::vector<double> ref;
    for (int64_t f = 0; f < F; ++f)
        for (int64_t y = 0; y < H / p; ++y)
            for (int64_t x = 0; x < W / p; ++x)
                for (int64_t c = 0; c < C; ++c)
                    for (int dy = 0; dy < p; ++dy)
                        for (int dx = 0; dx < p; ++dx) ref.push_back(v[((f * H + y * p + dy) * W + x * p + dx) * C + c]);
    const Tensor s2d = be().space_to_depth(dev(h), p);
    EXPECT_EQ(s2d.shape(), (Shape{F, H / p, W / p, C * p * p}));
    expect_equal(s2d, ref, "space_to_depth");

    std::vector<double> pad_ref;
    for (int64_t f = 0; f < F; ++f)
        for (int64_t y = 0; y < H + 1; ++y)
            for (int64_t x = 0; x < W + 3; ++x)
                for (int64_t c = 0; c < C; ++c) pad_ref.push_back(y < H && x < W ? v[((f * H + y) * W + x) * C + c] : 0.0);
    const Tensor padded = be().pad_grid(dev(h), 1, 3);
    EXPECT_EQ(padded.shape(), (Shape{F, H + 1, W + 3, C}));
    expect_equal(padded, pad_ref, "pad_grid");
    EXPECT_THROW(be().space_to_depth(dev(random_host({1, 5, 4, 2})), 2), Error);
    EXPECT_THROW(be().space_to_depth(dev(random_host({1, 3, 4, 2})), 2), Error);
}

// torch.nn.functional.interpolate(mode='bilinear', antialias=False), written from its
// definition in double: align_corners=False reads src = (dst + 0.5)·in/out − 0.5 with negative
// sources clamped to 0, True src = dst·(in − 1)/(out − 1); the far neighbour clamps to the last index.
std::vector<double> bilinear_ref(const Tensor& x, int64_t oh, int64_t ow, bool align_corners = false) {
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    const std::vector<double> xv = values(x);
    auto at = [&](int64_t f, int64_t r, int64_t c, int64_t ch) { return xv[((f * H + r) * W + c) * C + ch]; };
    auto source = [&](int64_t dst, int64_t in, int64_t out) {
        if (align_corners) return out > 1 ? static_cast<double>(dst) * (in - 1) / (out - 1) : 0.0;
        return std::max(0.0, (dst + 0.5) * in / out - 0.5);
    };
    std::vector<double> out(static_cast<size_t>(F * oh * ow * C));
    for (int64_t f = 0; f < F; ++f)
        for (int64_t r = 0; r < oh; ++r)
            for (int64_t c = 0; c < ow; ++c) {
                const double sy = source(r, H, oh), sx = source(c, W, ow);
                const int64_t y0 = std::min(static_cast<int64_t>(std::floor(sy)), H - 1);
                const int64_t x0 = std::min(static_cast<int64_t>(std::floor(sx)), W - 1);
                const int64_t y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
                const double ly = sy - y0, lx = sx - x0;
                for (int64_t ch = 0; ch < C; ++ch)
                    out[((f * oh + r) * ow + c) * C + ch] =
                        (1 - ly) * ((1 - lx) * at(f, y0, x0, ch) + lx * at(f, y0, x1, ch)) +
                        ly * ((1 - lx) * at(f, y1, x0, ch) + lx * at(f, y1, x1, ch));
            }
    return out;
}

TEST_P(Layout, ResizeBilinearKnownValues) {
    // PyTorch: interpolate([[0, 1]], size=4, bilinear, align_corners=False) = [0, 0.25, 0.75, 1].
    const Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 2, 3}, {1, 2, 2, 1});
    const Tensor y = host(be().resize_bilinear(dev(x), 4, 4));
    const float row[4] = {0, 0.25f, 0.75f, 1};
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) EXPECT_FLOAT_EQ(y.data<float>()[r * 4 + c], 2 * row[r] + row[c]);
}

TEST_P(Layout, ResizeBilinearMatchesDefinition) {
    const Tensor x = random_host({2, 28, 28, 5});
    // Every side the token budget can produce (even, 10..26), plus odd and upsampling sizes.
    // The CPU forms source coordinates in f32 as PyTorch does for f32 input; the reference
    // uses double, so they differ by ~1e-6.
    for (int side : {10, 12, 14, 18, 20, 22, 24, 26, 27, 28, 31, 56})
        expect_close(be().resize_bilinear(dev(x), side, side), bilinear_ref(x, side, side), tol(1e-5),
                     cat("resize 28 -> ", side));
    expect_close(be().resize_bilinear(dev(x), 13, 20), bilinear_ref(x, 13, 20), tol(1e-5), "resize 28 -> 13x20");
    // Same size is the identity.
    expect_equal(be().resize_bilinear(dev(x), 28, 28), values(x), "resize to the same size");
    struct Case {
        int64_t F, H, W, C;
        int oh, ow;
    };
    for (const Case c : {Case{2, 9, 13, 3, 5, 20}, Case{1, 9, 13, 3, 16, 7}, Case{3, 4, 4, 8, 4, 4},
                         Case{1, 1, 5, 2, 3, 2}}) {
        const Tensor h = random_host({c.F, c.H, c.W, c.C}, 0.0f, 1.0f);
        const Tensor out = be().resize_bilinear(dev(h), c.oh, c.ow);
        EXPECT_EQ(out.shape(), (Shape{c.F, c.oh, c.ow, c.C}));
        expect_close(out, bilinear_ref(h, c.oh, c.ow), tol(1e-5), cat("resize ", c.H, "x", c.W, " -> ", c.oh, "x", c.ow));
    }
}

TEST_P(Layout, ResizeBilinearAlignCornersKnownValues) {
    // PyTorch: interpolate([[0, 1]], size=4, bilinear, align_corners=True) = [0, 1/3, 2/3, 1]:
    // the corners stay where they are.
    const Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 2, 3}, {1, 2, 2, 1});
    const Tensor y = host(be().resize_bilinear(dev(x), 4, 4, true));
    const double row[4] = {0, 1.0 / 3, 2.0 / 3, 1};
    std::vector<double> want;
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) want.push_back(2 * row[r] + row[c]);
    expect_close(y, want, tol(1e-6), "align_corners 2 -> 4");
    // Downscaling keeps the first and last rows and columns exactly.
    const Tensor g = random_host({1, 22, 22, 3});
    const Tensor d = host(be().resize_bilinear(dev(g), 5, 5, true));
    const std::vector<double> dv = values(d), held_g = held(dev(g));
    for (int ch = 0; ch < 3; ++ch) {
        EXPECT_EQ(dv[ch], held_g[ch]);
        EXPECT_EQ(dv[(4 * 5 + 4) * 3 + ch], held_g[(21 * 22 + 21) * 3 + ch]);
    }
}

TEST_P(Layout, ResizeBilinearAlignCornersMatchesDefinition) {
    // Vidi-7B's image pool: the convolution's grid (g − ⌈g/s⌉ + 1) to s×s, and other shapes.
    struct Case {
        int64_t F, H, W, C;
        int oh, ow;
    };
    for (const Case c : {Case{2, 22, 22, 5, 5, 5}, Case{1, 24, 24, 8, 8, 8}, Case{2, 9, 13, 3, 5, 20},
                         Case{1, 9, 13, 3, 16, 7}, Case{1, 5, 5, 2, 1, 3}, Case{3, 4, 4, 8, 4, 4}}) {
        const Tensor h = random_host({c.F, c.H, c.W, c.C});
        const Tensor out = be().resize_bilinear(dev(h), c.oh, c.ow, true);
        EXPECT_EQ(out.shape(), (Shape{c.F, c.oh, c.ow, c.C}));
        expect_close(out, bilinear_ref(h, c.oh, c.ow, true), tol(1e-5),
                     cat("align_corners ", c.H, "x", c.W, " -> ", c.oh, "x", c.ow));
    }
}

TEST_P(Layout, Im2col2dGathers) {
    struct Case {
        int64_t F, H, W, C;
        int k, stride;
    };
    for (const Case c : {Case{2, 7, 6, 3, 3, 1}, Case{1, 27, 27, 4, 6, 1}, Case{2, 9, 9, 2, 3, 2}, Case{1, 4, 5, 5, 4, 1},
                         Case{1, 3, 3, 1, 1, 1}}) {
        const Tensor h = random_host({c.F, c.H, c.W, c.C});
        const std::vector<double> v = values(h);
        const int64_t Ho = (c.H - c.k) / c.stride + 1, Wo = (c.W - c.k) / c.stride + 1;
        std::vector<double> ref;
        for (int64_t f = 0; f < c.F; ++f)
            for (int64_t oy = 0; oy < Ho; ++oy)
                for (int64_t ox = 0; ox < Wo; ++ox)
                    for (int64_t ch = 0; ch < c.C; ++ch)
                        for (int ky = 0; ky < c.k; ++ky)
                            for (int kx = 0; kx < c.k; ++kx)
                                ref.push_back(v[((f * c.H + oy * c.stride + ky) * c.W + ox * c.stride + kx) * c.C + ch]);
        const Tensor out = be().im2col_2d(dev(h), c.k, c.stride);
        EXPECT_EQ(out.shape(), (Shape{c.F, Ho, Wo, c.C * c.k * c.k}));
        expect_equal(out, ref, cat("im2col_2d ", c.H, "x", c.W, " k=", c.k, " stride=", c.stride));
    }
    EXPECT_THROW(be().im2col_2d(dev(random_host({1, 3, 5, 2})), 4, 1), Error);  // taller than the grid
    EXPECT_THROW(be().im2col_2d(dev(random_host({3, 5, 2})), 2, 1), Error);     // not [F, H, W, C]
    EXPECT_THROW(be().im2col_2d(dev(random_host({1, 5, 5, 2})), 2, 0), Error);
}

TEST_P(Layout, Im2col2dLinearIsConv2d) {
    // PyTorch's Conv2d (stride 1 and 2, no padding, no bias) on an [F, H, W, Cin] grid.
    const int64_t F = 2, H = 11, W = 9, Cin = 6, Cout = 5;
    for (auto [k, stride] : {std::pair{4, 1}, std::pair{3, 2}}) {
        const Tensor x = random_host({F, H, W, Cin}), w = random_host({Cout, Cin, k, k});
        const std::vector<double> xv = values(x), wv = values(w);
        const int64_t Ho = (H - k) / stride + 1, Wo = (W - k) / stride + 1;
        std::vector<double> ref(static_cast<size_t>(F * Ho * Wo * Cout));
        for (int64_t f = 0; f < F; ++f)
            for (int64_t oy = 0; oy < Ho; ++oy)
                for (int64_t ox = 0; ox < Wo; ++ox)
                    for (int64_t o = 0; o < Cout; ++o) {
                        double s = 0;
                        for (int64_t i = 0; i < Cin; ++i)
                            for (int64_t ky = 0; ky < k; ++ky)
                                for (int64_t kx = 0; kx < k; ++kx)
                                    s += wv[((o * Cin + i) * k + ky) * k + kx] *
                                         xv[((f * H + oy * stride + ky) * W + ox * stride + kx) * Cin + i];
                        ref[((f * Ho + oy) * Wo + ox) * Cout + o] = s;
                    }
        const Tensor cols = be().im2col_2d(dev(x), k, stride);
        expect_close(be().linear(cols.reshape({F * Ho * Wo, Cin * k * k}), weight(w.reshape({Cout, Cin * k * k}))), ref,
                     tol(1e-6), cat("conv2d k=", k, " stride=", stride));
    }
}

// The backend's pixels equal the host's Pillow resize and normalisation exactly: the same
// bytes, then the same f32 value (rounded as the backend stores it). Downscales, upscales, an
// axis left alone, odd sizes.
TEST_P(Layout, FramesToPixelsArePillowsResizeThenNormalisation) {
    struct Case {
        int64_t n;
        int h, w, size;
    } cases[] = {{3, 720, 1280, 384}, {2, 19, 37, 24}, {1, 500, 384, 384}, {2, 384, 384, 384}, {1, 1, 1, 5},
                 {3, 45, 80, 32}};
    std::uniform_int_distribution<int> byte(0, 255);
    for (const Case& c : cases) {
        Tensor rgb = Tensor::empty({c.n, c.h, c.w, 3}, DType::u8);
        for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(byte(rng()));
        std::vector<double> ref;
        for (int64_t i = 0; i < c.n; ++i) {
            std::vector<uint8_t> resized(static_cast<size_t>(c.size) * c.size * 3);
            resize_bicubic_u8(rgb.row(i).data<uint8_t>(), c.w, c.h, 3, resized.data(), c.size, c.size);
            std::vector<float> chw(3 * static_cast<size_t>(c.size) * c.size);
            normalize_siglip(resized.data(), c.size, chw.data());
            ref.insert(ref.end(), chw.begin(), chw.end());
        }
        const Tensor out = be().frames_to_pixels(rgb, c.size);
        ASSERT_EQ(out.shape(), (Shape{c.n, 3, c.size, c.size}));
        expect_equal(out, stored(ref), cat("frames_to_pixels ", c.h, "x", c.w, " -> ", c.size));
    }
    Tensor rgb = Tensor::empty({1, 4, 4, 3}, DType::u8);
    EXPECT_THROW(be().frames_to_pixels(Tensor::empty({1, 4, 4, 4}, DType::u8), 8), Error);  // not RGB
    EXPECT_THROW(be().frames_to_pixels(Tensor::empty({1, 4, 4, 3}, DType::f32), 8), Error);
    EXPECT_THROW(be().frames_to_pixels(rgb, 0), Error);
}

// Both compute in double (a GPU with cuFFT, the host with its FFT): the f32 features are the
// host's per 30 s piece exactly on the CPU; a 16-bit backend's are the host's rounded, but for
// rare ties.
TEST_P(Layout, LogMelIsWhisperLogMelPerPiece) {
    const int64_t n = 2 * kPieceSamples + 54321;  // a partial third piece
    Tensor pcm = Tensor::empty({n}, DType::f32);
    std::normal_distribution<float> noise(0.0f, 0.05f);
    for (int64_t i = 0; i < n; ++i)
        pcm.data<float>()[i] = static_cast<float>(0.4 * std::sin(0.003 * i) * std::sin(1e-5 * i)) + noise(rng());
    for (int bins : {128, 80, 128}) {  // (a backend that keeps its filters must follow the count)
        std::vector<double> ref;
        for (int64_t first = 0; first < n; first += kPieceSamples) {
            const Tensor piece = log_mel_piece(pcm.data<float>() + first,
                                               static_cast<size_t>(std::min<int64_t>(kPieceSamples, n - first)), bins);
            const std::vector<double> v = values(piece);
            ref.insert(ref.end(), v.begin(), v.end());
        }
        const Tensor out = be().log_mel(pcm, bins);
        ASSERT_EQ(out.shape(), (Shape{3, bins, kMelFrames}));
        if (be().act_dtype() == DType::f32) expect_equal(out, ref, cat("log_mel, ", bins, " bins"));
        else expect_close(out, stored(ref), 1e-5, cat("log_mel, ", bins, " bins"));
    }
    EXPECT_THROW(be().log_mel(Tensor::empty({4}, DType::bf16), 80), Error);
    EXPECT_THROW(be().log_mel(Tensor::empty({0}, DType::f32), 80), Error);
    EXPECT_THROW(be().log_mel(pcm, 0), Error);
}

}  // namespace

VIDI_BACKEND_SUITE(Layout);
