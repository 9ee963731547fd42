// Element-wise and row-wise ops against their textbook formulas in double.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/ref_util.h"

using namespace vidi;
using namespace vidi::test;

TEST(Elementwise, AddAndScale) {
    auto be = test_backend();
    Tensor x = random_tensor({5, 7}, DType::f32, 1), y = random_tensor({5, 7}, DType::f32, 2);
    auto xv = values(x), yv = values(y);
    be->add_(x, y);
    be->scale_(x, -1.5f);
    std::vector<double> ref(xv.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = (xv[i] + yv[i]) * -1.5;
    EXPECT_LT(rel_err(x, ref), 1e-6);
    Tensor bad = random_tensor({7, 5}, DType::f32, 3);
    EXPECT_THROW(be->add_(x, bad), Error);
}

TEST(Elementwise, AddBroadcastEveryPattern) {
    auto be = test_backend();
    const Shape xs = {3, 4, 5, 6};
    for (int mask = 0; mask < 8; ++mask) {  // which of the three leading dims are broadcast
        Shape ys = xs;
        for (int d = 0; d < 3; ++d)
            if (mask & (1 << d)) ys[d] = 1;
        Tensor x = random_tensor(xs, DType::f32, 10 + mask), y = random_tensor(ys, DType::f32, 20 + mask);
        auto xv = values(x), yv = values(y);
        std::vector<double> ref(xv.size());
        for (int64_t a = 0; a < 3; ++a)
            for (int64_t b = 0; b < 4; ++b)
                for (int64_t c = 0; c < 5; ++c)
                    for (int64_t d = 0; d < 6; ++d) {
                        const int64_t xi = ((a * 4 + b) * 5 + c) * 6 + d;
                        const int64_t yi = (((ys[0] == 1 ? 0 : a) * ys[1] + (ys[1] == 1 ? 0 : b)) * ys[2] +
                                            (ys[2] == 1 ? 0 : c)) * 6 + d;
                        ref[xi] = xv[xi] + yv[yi];
                    }
        be->add_broadcast_(x, y);
        EXPECT_LT(rel_err(x, ref), 1e-7) << "mask " << mask;
    }
    // Lower-rank y is right-aligned: [D] onto [A, B, D].
    Tensor x = random_tensor({2, 3, 4}, DType::f32, 30), y = random_tensor({4}, DType::f32, 31);
    auto xv = values(x), yv = values(y);
    be->add_broadcast_(x, y);
    std::vector<double> ref(xv.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = xv[i] + yv[i % 4];
    EXPECT_LT(rel_err(x, ref), 1e-7);
    Tensor bad = random_tensor({1, 2, 4}, DType::f32, 32);
    EXPECT_THROW(be->add_broadcast_(x, bad), Error);
}

TEST(Elementwise, GeluBothForms) {
    auto be = test_backend();
    for (Gelu kind : {Gelu::erf, Gelu::tanh}) {
        Tensor x = random_tensor({1000}, DType::f32, 5, -6.0f, 6.0f);
        auto xv = values(x);
        std::vector<double> ref(xv.size());
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = kind == Gelu::erf ? gelu_erf_ref(xv[i]) : gelu_tanh_ref(xv[i]);
        be->gelu_(x, kind);
        EXPECT_LT(rel_err(x, ref), 1e-6);
    }
    // The two forms really differ (the test would not notice a swap otherwise).
    EXPECT_GT(std::abs(gelu_erf_ref(1.5) - gelu_tanh_ref(1.5)), 1e-5);
}

TEST(Elementwise, SoftcapAndGeglu) {
    auto be = test_backend();
    Tensor x = random_tensor({300}, DType::f32, 6, -200.0f, 200.0f);
    auto xv = values(x);
    std::vector<double> ref(xv.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = 30.0 * std::tanh(xv[i] / 30.0);
    be->softcap_(x, 30.0f);
    EXPECT_LT(rel_err(x, ref), 1e-6);

    Tensor g = random_tensor({4, 50}, DType::f32, 7, -4, 4), u = random_tensor({4, 50}, DType::f32, 8);
    auto gv = values(g), uv = values(u);
    for (size_t i = 0; i < gv.size(); ++i) gv[i] = gelu_tanh_ref(gv[i]) * uv[i];
    EXPECT_LT(rel_err(be->geglu(g, u), gv), 1e-6);
}

TEST(Elementwise, RmsNormAllWeightModes) {
    auto be = test_backend();
    const int64_t rows = 9, D = 96;
    Tensor x = random_tensor({rows, D}, DType::f32, 9, -3, 3);
    Tensor w = random_tensor({D}, DType::bf16, 10);
    auto xv = values(x), wv = values(w);
    const double eps = 1e-6;
    for (NormWeight mode : {NormWeight::none, NormWeight::plain, NormWeight::one_plus}) {
        std::vector<double> ref(xv.size());
        for (int64_t r = 0; r < rows; ++r) {
            double ss = 0;
            for (int64_t i = 0; i < D; ++i) ss += xv[r * D + i] * xv[r * D + i];
            const double inv = 1.0 / std::sqrt(ss / D + eps);
            for (int64_t i = 0; i < D; ++i) {
                const double g = mode == NormWeight::none ? 1.0 : mode == NormWeight::plain ? wv[i] : 1.0 + wv[i];
                ref[r * D + i] = xv[r * D + i] * inv * g;
            }
        }
        Tensor y = be->rms_norm(x, mode == NormWeight::none ? Tensor() : w, static_cast<float>(eps), mode);
        EXPECT_LT(rel_err(y, ref), 1e-6) << static_cast<int>(mode);
    }
    EXPECT_THROW(be->rms_norm(x, random_tensor({D - 1}, DType::f32, 1), 1e-6f, NormWeight::plain), Error);
}

TEST(Elementwise, LayerNorm) {
    auto be = test_backend();
    const int64_t rows = 6, D = 48;
    Tensor x = random_tensor({rows, D}, DType::f32, 11, 2, 5);  // offset mean: tests centring
    Tensor w = random_tensor({D}, DType::bf16, 12), b = random_tensor({D}, DType::bf16, 13);
    auto xv = values(x), wv = values(w), bv = values(b);
    std::vector<double> ref(xv.size());
    for (int64_t r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < D; ++i) mean += xv[r * D + i] / D;
        for (int64_t i = 0; i < D; ++i) var += (xv[r * D + i] - mean) * (xv[r * D + i] - mean) / D;
        for (int64_t i = 0; i < D; ++i) ref[r * D + i] = (xv[r * D + i] - mean) / std::sqrt(var + 1e-6) * wv[i] + bv[i];
    }
    EXPECT_LT(rel_err(be->layer_norm(x, w, b, 1e-6f), ref), 1e-6);
}

TEST(Memory, CopyConvertsIntoViews) {
    auto be = test_backend();
    Tensor dst = be->empty({4, 8}, DType::bf16);
    Tensor src = random_tensor({2, 8}, DType::f32, 14);
    Tensor view = dst.rows(1, 3);
    be->copy_(view, src);
    auto d = dst.to_f32_vector();
    auto s = src.to_f32_vector();
    for (int i = 0; i < 8; ++i) EXPECT_EQ(d[i], 0.0f);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(d[8 + i], bf16_to_f32(f32_to_bf16(s[i])));
    Tensor up = be->upload(dst);
    EXPECT_EQ(up.dtype(), DType::f32);
    EXPECT_EQ(be->to_host(up).to_f32_vector(), d);
    EXPECT_THROW(be->copy_(dst, src), Error);  // 32 vs 16 elements
}

TEST(TopPick, FirstLargestAndItsLeadOverTheRest) {
    const float nan = NAN, inf = INFINITY;
    struct Case {
        std::vector<float> x;
        int32_t id;
        float margin;
    };
    const std::vector<Case> cases = {
        {{1, 5, 3}, 1, 2},          // the lead over the second largest
        {{5, 3, 5}, 0, 0},          // a tie: the first index, no lead
        {{3, 5}, 1, 2},             // the first value becomes the second
        {{nan, 2, nan, 1}, 1, 1},   // NaNs are never picked nor second
        {{7}, 0, inf},              // one value: nothing second
    };
    for (const Case& c : cases) {
        const TopPick p = top_pick(c.x.data(), static_cast<int64_t>(c.x.size()));
        EXPECT_EQ(p.id, c.id);
        EXPECT_EQ(p.margin, c.margin);
    }
}

TEST(TopPick, BackendPicksEachRow) {
    auto be = test_backend();
    Tensor x = random_tensor({3, 50}, DType::f32, 7);
    x.data<float>()[0 * 50 + 9] = 3.0f;
    x.data<float>()[1 * 50 + 49] = 2.0f;
    x.data<float>()[2 * 50 + 0] = 4.0f;
    x.data<float>()[2 * 50 + 1] = 3.5f;
    const std::vector<TopPick> picks = be->top_picks(x);
    ASSERT_EQ(picks.size(), 3u);
    EXPECT_EQ(picks[0].id, 9);
    EXPECT_EQ(picks[1].id, 49);
    EXPECT_EQ(picks[2].id, 0);
    EXPECT_EQ(picks[2].margin, 0.5f);
    EXPECT_THROW(be->top_picks(Tensor()), Error);
}
