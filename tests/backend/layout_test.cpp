// Layout ops, checked through what they are for: im2col + linear must equal a direct
// Conv1d, patchify + linear a direct strided Conv2d; resize_bilinear against a second,
// naive implementation written from PyTorch's definition; frames_to_pixels against the
// per-image Pillow resize and normalisation it batches; log_mel against the per-piece
// log-mel.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/ref_util.h"
#include "core/log_mel.h"
#include "core/pil_resize.h"

using namespace vidi;
using namespace vidi::test;

TEST(Layout, EmbedGathersAndChecksIds) {
    auto be = test_backend();
    Tensor table = random_tensor({10, 6}, DType::bf16, 1);
    Tensor y = be->embed(table, {3, 0, 9, 3});
    auto tv = values(table);
    std::vector<double> ref;
    for (int id : {3, 0, 9, 3})
        for (int d = 0; d < 6; ++d) ref.push_back(tv[id * 6 + d]);
    EXPECT_EQ(rel_err(y, ref), 0.0);
    EXPECT_THROW(be->embed(table, {10}), Error);
    EXPECT_THROW(be->embed(table, {-1}), Error);
    // The same ids as a tensor (a recorded step's input).
    EXPECT_EQ(rel_err(be->embed(table, Tensor::from_vector(std::vector<int32_t>{3, 0, 9, 3})), ref), 0.0);
    EXPECT_THROW(be->embed(table, Tensor::from_vector(std::vector<int32_t>{10})), Error);
    EXPECT_THROW(be->embed(table, Tensor::from_vector(std::vector<int64_t>{3})), Error);
}

TEST(Layout, Transpose) {
    auto be = test_backend();
    Tensor x = random_tensor({37, 45}, DType::f32, 2);
    Tensor y = be->transpose2d(x);
    ASSERT_EQ(y.shape(), (Shape{45, 37}));
    for (int a = 0; a < 37; ++a)
        for (int b = 0; b < 45; ++b) ASSERT_EQ(y.data<float>()[b * 37 + a], x.data<float>()[a * 45 + b]);
}

TEST(Layout, Im2colLinearIsConv1d) {
    auto be = test_backend();
    struct C {
        int64_t T, Cin, Cout;
        int k, stride, pad;
    };
    for (C c : {C{30, 5, 7, 3, 1, 1}, C{30, 5, 7, 3, 2, 1}, C{23, 4, 6, 5, 5, 0}, C{3, 2, 3, 3, 2, 1}}) {
        Tensor x = random_tensor({c.T, c.Cin}, DType::f32, 3);
        Tensor w = random_tensor({c.Cout, c.Cin, c.k}, DType::bf16, 4);  // PyTorch Conv1d layout
        Tensor b = random_tensor({c.Cout}, DType::bf16, 5);
        const int64_t To = (c.T + 2 * c.pad - c.k) / c.stride + 1;
        auto xv = values(x), wv = values(w), bv = values(b);
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
        Tensor cols = be->im2col_1d(x, c.k, c.stride, c.pad);
        ASSERT_EQ(cols.shape(), (Shape{To, c.Cin * c.k}));
        EXPECT_LT(rel_err(be->linear(cols, w.reshape({c.Cout, c.Cin * c.k}), b), ref), 1e-6);
    }
}

TEST(Layout, PatchifyLinearIsStridedConv2d) {
    auto be = test_backend();
    const int64_t N = 2, C = 3, S = 30, p = 7, G = S / p, Cout = 5;  // 30 = 4·7 + 2 leftover pixels
    Tensor px = random_tensor({N, C, S, S}, DType::f32, 6);
    Tensor w = random_tensor({Cout, C, p, p}, DType::bf16, 7);
    auto xv = values(px), wv = values(w);
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
    Tensor cols = be->patchify(px, static_cast<int>(p));
    ASSERT_EQ(cols.shape(), (Shape{N, G * G, C * p * p}));
    EXPECT_LT(rel_err(be->linear(cols, w.reshape({Cout, C * p * p})), ref), 1e-6);
}

TEST(Layout, SpaceToDepthIsChannelMajor) {
    auto be = test_backend();
    const int64_t F = 2, H = 4, W = 6, C = 3, p = 2;
    Tensor x = random_tensor({F, H, W, C}, DType::f32, 8);
    Tensor y = be->space_to_depth(x, static_cast<int>(p));
    ASSERT_EQ(y.shape(), (Shape{F, H / p, W / p, C * p * p}));
    for (int64_t f = 0; f < F; ++f)
        for (int64_t ty = 0; ty < H / p; ++ty)
            for (int64_t tx = 0; tx < W / p; ++tx)
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t dy = 0; dy < p; ++dy)
                        for (int64_t dx = 0; dx < p; ++dx)
                            ASSERT_EQ(y.data<float>()[((f * (H / p) + ty) * (W / p) + tx) * C * p * p + c * p * p + dy * p + dx],
                                      x.data<float>()[((f * H + ty * p + dy) * W + tx * p + dx) * C + c]);
    EXPECT_THROW(be->space_to_depth(random_tensor({1, 3, 4, 2}, DType::f32, 9), 2), Error);
}

TEST(Layout, PadGridAddsZerosBottomRight) {
    auto be = test_backend();
    Tensor x = random_tensor({2, 3, 3, 4}, DType::f32, 10);
    Tensor y = be->pad_grid(x, 1, 2);
    ASSERT_EQ(y.shape(), (Shape{2, 4, 5, 4}));
    for (int64_t f = 0; f < 2; ++f)
        for (int64_t r = 0; r < 4; ++r)
            for (int64_t c = 0; c < 5; ++c)
                for (int64_t ch = 0; ch < 4; ++ch) {
                    const float got = y.data<float>()[((f * 4 + r) * 5 + c) * 4 + ch];
                    const float want = (r < 3 && c < 3) ? x.data<float>()[((f * 3 + r) * 3 + c) * 4 + ch] : 0.0f;
                    ASSERT_EQ(got, want);
                }
}

namespace {

// torch.nn.functional.interpolate(mode='bilinear', align_corners=False, antialias=False),
// written from its definition in double: src = (dst + 0.5)·in/out − 0.5, negative sources
// clamp to 0, the far neighbour clamps to the last index.
std::vector<double> bilinear_ref(const Tensor& x, int64_t oh, int64_t ow) {
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    auto xv = values(x);
    auto at = [&](int64_t f, int64_t r, int64_t c, int64_t ch) { return xv[((f * H + r) * W + c) * C + ch]; };
    std::vector<double> out(static_cast<size_t>(F * oh * ow * C));
    for (int64_t f = 0; f < F; ++f)
        for (int64_t r = 0; r < oh; ++r)
            for (int64_t c = 0; c < ow; ++c) {
                const double sy = std::max(0.0, (r + 0.5) * H / oh - 0.5);
                const double sx = std::max(0.0, (c + 0.5) * W / ow - 0.5);
                const int64_t y0 = static_cast<int64_t>(std::floor(sy)), x0 = static_cast<int64_t>(std::floor(sx));
                const int64_t y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
                const double ly = sy - y0, lx = sx - x0;
                for (int64_t ch = 0; ch < C; ++ch)
                    out[((f * oh + r) * ow + c) * C + ch] =
                        (1 - ly) * ((1 - lx) * at(f, y0, x0, ch) + lx * at(f, y0, x1, ch)) +
                        ly * ((1 - lx) * at(f, y1, x0, ch) + lx * at(f, y1, x1, ch));
            }
    return out;
}

}  // namespace

TEST(Layout, ResizeBilinearKnownValues) {
    // PyTorch: interpolate([[0, 1]], size=4, bilinear, align_corners=False) = [0, 0.25, 0.75, 1].
    auto be = test_backend();
    Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 2, 3}, {1, 2, 2, 1});
    Tensor y = be->resize_bilinear(x, 4, 4);
    const float row[4] = {0, 0.25f, 0.75f, 1};
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) EXPECT_FLOAT_EQ(y.data<float>()[r * 4 + c], 2 * row[r] + row[c]);
}

TEST(Layout, ResizeBilinearMatchesDefinition) {
    auto be = test_backend();
    Tensor x = random_tensor({2, 28, 28, 5}, DType::f32, 11);
    // Every side the token budget can produce (even, 10..26), plus odd and upsampling sizes.
    for (int side : {10, 12, 14, 18, 20, 22, 24, 26, 27, 28, 31, 56}) {
        // The kernel forms source coordinates in f32 as PyTorch does for f32 input; the
        // reference uses double, so they differ by ~1e-6.
        EXPECT_LT(rel_err(be->resize_bilinear(x, side, side), bilinear_ref(x, side, side)), 1e-5) << side;
    }
    EXPECT_LT(rel_err(be->resize_bilinear(x, 13, 20), bilinear_ref(x, 13, 20)), 1e-5);
    // Same size is the identity.
    EXPECT_EQ(rel_err(be->resize_bilinear(x, 28, 28), values(x)), 0.0);
}

TEST(Layout, FramesToPixelsIsPillowResizeThenNormalisation) {
    auto be = test_backend();
    const int n = 3, h = 45, w = 80, S = 32;
    Tensor rgb = Tensor::empty({n, h, w, 3}, DType::u8);
    for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>((i * 7919) % 251);
    const Tensor px = be->frames_to_pixels(rgb, S);
    ASSERT_EQ(px.shape(), (Shape{n, 3, S, S}));
    for (int i = 0; i < n; ++i) {
        std::vector<uint8_t> resized(S * S * 3);
        resize_bicubic_u8(rgb.row(i).data<uint8_t>(), w, h, 3, resized.data(), S, S);
        std::vector<float> chw(3 * S * S);
        normalize_siglip(resized.data(), S, chw.data());
        EXPECT_EQ(std::vector<double>(chw.begin(), chw.end()), values(px.row(i))) << "frame " << i;
    }
    EXPECT_THROW(be->frames_to_pixels(Tensor::empty({1, 4, 4, 4}, DType::u8), 8), Error);  // 4 channels
    EXPECT_THROW(be->frames_to_pixels(rgb, 0), Error);
}

TEST(Layout, LogMelIsWhisperLogMelPerPiece) {
    auto be = test_backend();
    const int64_t n = kPieceSamples + 12345;  // a whole piece and a partial one
    Tensor pcm = Tensor::empty({n}, DType::f32);
    for (int64_t i = 0; i < n; ++i) pcm.data<float>()[i] = static_cast<float>(0.3 * std::sin(0.01 * i));
    const Tensor mel = be->log_mel(pcm, 80);
    ASSERT_EQ(mel.shape(), (Shape{2, 80, kMelFrames}));
    for (int64_t p = 0; p < 2; ++p) {
        const int64_t first = p * kPieceSamples;
        const Tensor ref = log_mel_piece(pcm.data<float>() + first, static_cast<size_t>(std::min<int64_t>(kPieceSamples, n - first)), 80);
        EXPECT_EQ(values(ref), values(mel.row(p))) << "piece " << p;
    }
    EXPECT_THROW(be->log_mel(Tensor::empty({0}, DType::f32), 80), Error);
    EXPECT_THROW(be->log_mel(pcm, 0), Error);
}
