// Element-wise and row-wise ops against their textbook formulas in double, on sizes that hit
// a GPU's 16-byte vector path and its scalar tail, and on unaligned views; the greedy pick.
#include <cmath>

#include "backend/backend_test.h"

using namespace vidi;
using namespace vidi::test;

namespace {

const int64_t kSizes[] = {1, 7, 8, 1000, 4099, 196613};

class Elementwise : public BackendTest {
protected:
    // A backend tensor of n random values that starts one element past the start of its storage
    // (on a GPU 2 bytes past a 16-byte boundary): `whole` holds n + 1 values, `view` the last n.
    struct Unaligned {
        Tensor host, whole, view;
    };
    Unaligned unaligned(int64_t n) const {
        Unaligned u;
        u.host = random_host({n + 1, 1}, -3.0f, 3.0f);
        u.whole = dev(u.host);
        u.view = u.whole.rows(1, n + 1).reshape({n});
        return u;
    }
};

TEST_P(Elementwise, UnaryOps) {
    for (int64_t n : kSizes) {
        for (int variant = 0; variant < 4; ++variant) {
            const Tensor h = random_host({n}, -4.0f, 4.0f);
            std::vector<double> ref = values(h);
            Tensor x = dev(h);
            switch (variant) {
                case 0: be().scale_(x, 0.37f); for (double& v : ref) v *= 0.37f; break;
                case 1: be().gelu_(x, Gelu::tanh); for (double& v : ref) v = gelu_tanh_ref(v); break;
                case 2: be().gelu_(x, Gelu::erf); for (double& v : ref) v = gelu_erf_ref(v); break;
                case 3: be().softcap_(x, 2.5f); for (double& v : ref) v = 2.5 * std::tanh(v / 2.5); break;
            }
            // A few values may all sit where GELU's 1 + tanh cancels (x near -4), which costs f32
            // digits relative to so small a result; a thousand are dominated by the others.
            expect_close(x, ref, tol(n < 1000 ? 1e-3 : 1e-6), cat("unary op ", variant, " n=", n));
        }
    }
    // The two GELU forms really differ (the test would not notice a swap otherwise).
    EXPECT_GT(std::abs(gelu_erf_ref(1.5) - gelu_tanh_ref(1.5)), 1e-5);
}

TEST_P(Elementwise, SoftcapOfLargeValues) {
    const Tensor h = random_host({300}, -200.0f, 200.0f);
    std::vector<double> ref = values(h);
    for (double& v : ref) v = 30.0 * std::tanh(v / 30.0);
    Tensor x = dev(h);
    be().softcap_(x, 30.0f);
    expect_close(x, ref, tol(1e-6), "softcap_ 30");
}

TEST_P(Elementwise, UnaryOnUnalignedView) {
    Unaligned u = unaligned(1003);
    be().gelu_(u.view, Gelu::tanh);
    std::vector<double> ref = values(u.host);
    for (size_t i = 1; i < ref.size(); ++i) ref[i] = gelu_tanh_ref(ref[i]);
    expect_close(u.whole, ref, tol(1e-6), "gelu_ on an unaligned view");
}

TEST_P(Elementwise, AddScaleAndBothGlus) {
    for (int64_t n : kSizes) {
        const Tensor a = random_host({n}, -3.0f, 3.0f), b = random_host({n}, -3.0f, 3.0f);
        const std::vector<double> av = values(a), bv = values(b);
        Tensor x = dev(a);
        be().add_(x, dev(b));
        be().scale_(x, -1.5f);
        std::vector<double> ref(av.size());
        for (size_t i = 0; i < av.size(); ++i) ref[i] = (av[i] + bv[i]) * -1.5;
        expect_close(x, ref, tol(1e-6), cat("add_ then scale_ n=", n));
        for (Glu kind : {Glu::gelu_tanh, Glu::silu}) {
            for (size_t i = 0; i < av.size(); ++i) ref[i] = glu_ref(av[i], bv[i], kind);
            expect_close(be().glu(dev(a), dev(b), kind), ref, tol(1e-6),
                         cat(kind == Glu::silu ? "swiglu" : "geglu", " n=", n));
        }
    }
    // GeGLU and SwiGLU differ (a swap would show).
    EXPECT_GT(std::abs(glu_ref(1.5, 1.0, Glu::silu) - glu_ref(1.5, 1.0, Glu::gelu_tanh)), 1e-2);
    Unaligned u = unaligned(517);
    const Tensor y = random_host({517});
    be().add_(u.view, dev(y));
    std::vector<double> ref = values(u.host);
    const std::vector<double> yv = values(y);
    for (size_t i = 0; i < yv.size(); ++i) ref[i + 1] += yv[i];
    expect_close(u.whole, ref, tol(1e-6), "add_ on an unaligned view");
    EXPECT_THROW(be().add_(u.view, dev(random_host({516}))), Error);
    EXPECT_THROW(be().glu(dev(random_host({4, 5})), dev(random_host({5, 4})), Glu::silu), Error);
}

TEST_P(Elementwise, AddBroadcastEveryPattern) {
    std::vector<std::pair<Shape, Shape>> cases = {
        {{2, 3, 4, 16}, {1, 3, 1, 16}}, {{2, 3, 4, 16}, {16}},          {{5, 7, 9}, {5, 1, 9}},
        {{6, 10}, {1, 10}},             {{3, 4, 5, 24}, {3, 4, 5, 24}}, {{2, 5, 3, 40}, {2, 1, 3, 40}},
        {{2, 3, 4}, {4}}};  // a lower-rank y is right-aligned
    for (int mask = 0; mask < 8; ++mask) {  // which of the three leading dims are broadcast
        Shape ys = {3, 4, 5, 6};
        for (int d = 0; d < 3; ++d)
            if (mask & (1 << d)) ys[d] = 1;
        cases.push_back({{3, 4, 5, 6}, ys});
    }
    for (const auto& [xs, ys] : cases) {
        const Tensor xh = random_host(xs), yh = random_host(ys);
        Tensor x = dev(xh);
        be().add_broadcast_(x, dev(yh));
        // Reference with both shapes right-aligned to rank 4.
        int64_t X[4] = {1, 1, 1, 1}, Y[4] = {1, 1, 1, 1};
        for (size_t i = 0; i < xs.size(); ++i) X[4 - xs.size() + i] = xs[i];
        for (size_t i = 0; i < ys.size(); ++i) Y[4 - ys.size() + i] = ys[i];
        std::vector<double> ref = values(xh);
        const std::vector<double> yv = values(yh);
        for (int64_t a = 0; a < X[0]; ++a)
            for (int64_t b = 0; b < X[1]; ++b)
                for (int64_t c = 0; c < X[2]; ++c)
                    for (int64_t d = 0; d < X[3]; ++d) {
                        const int64_t yi = (((Y[0] == 1 ? 0 : a) * Y[1] + (Y[1] == 1 ? 0 : b)) * Y[2] +
                                            (Y[2] == 1 ? 0 : c)) * Y[3] + d;
                        ref[((a * X[1] + b) * X[2] + c) * X[3] + d] += yv[yi];
                    }
        expect_close(x, ref, tol(1e-7), cat("add_broadcast_ ", shape_str(ys), " onto ", shape_str(xs)));
    }
    Tensor x = dev(random_host({2, 3, 8}));
    EXPECT_THROW(be().add_broadcast_(x, dev(random_host({2, 8}))), Error);     // 2 vs 3
    EXPECT_THROW(be().add_broadcast_(x, dev(random_host({1, 2, 8}))), Error);  // right-aligned: 2 vs 3
}

TEST_P(Elementwise, RmsNormAllWeightModes) {
    const std::vector<std::pair<int64_t, int64_t>> sizes = {{3, 3584}, {5, 1152}, {4, 100}, {1, 7}, {70, 256}, {9, 96}};
    for (auto [rows, D] : sizes)
        for (NormWeight mode : {NormWeight::none, NormWeight::plain, NormWeight::one_plus}) {
            const Tensor x = random_host({rows, D}, -4.0f, 4.0f), w = random_host({D}, -1.0f, 1.0f);
            const std::vector<double> ref = rms_norm_ref(values(x), values(w), D, 1e-6, mode);
            const Tensor y = be().rms_norm(dev(x), mode == NormWeight::none ? Tensor() : dev(w), 1e-6f, mode);
            expect_close(y, ref, tol(1e-6), cat("rms_norm rows=", rows, " D=", D, " mode=", int(mode)));
        }
    EXPECT_THROW(be().rms_norm(dev(random_host({2, 8})), dev(random_host({7})), 1e-6f, NormWeight::plain), Error);
}

TEST_P(Elementwise, LayerNormWithLargeMean) {
    // A GPU takes rows of up to 1536 (multiples of 8) a warp each, 8 rows a block: 17 rows leave
    // a block part-full; 1024 and 1536 are the ends of its two register sizes, 1544 past them.
    const std::vector<std::pair<int64_t, int64_t>> sizes = {{3, 1152}, {4, 1280}, {2, 100},   {9, 3},
                                                            {6, 48},   {17, 1024}, {2, 1536}, {3, 1544}};
    for (auto [rows, D] : sizes) {
        const Tensor x = random_host({rows, D}, 2.0f, 6.0f);  // mean far from 0: a one-pass variance would lose it
        const Tensor w = random_host({D}), b = random_host({D});
        expect_close(be().layer_norm(dev(x), dev(w), dev(b), 1e-6f),
                     layer_norm_ref(values(x), values(w), values(b), D, 1e-6), tol(1e-6),
                     cat("layer_norm rows=", rows, " D=", D));
    }
}

TEST_P(Elementwise, CopyConvertsAndWritesIntoViews) {
    const Tensor src = random_host({2, 8});
    Tensor dst = be().empty({4, 8}, DType::f32);
    be().copy_(dst, dev(random_host({4, 8})));
    const std::vector<double> before = held(dst);
    Tensor view = dst.rows(1, 3);
    be().copy_(view, dev(src));
    std::vector<double> want = before;
    const std::vector<double> s = held(dev(src));
    std::copy(s.begin(), s.end(), want.begin() + 8);
    expect_equal(dst, want, "copy_ into a view");
    // Into the activation dtype and back: the values as the backend holds them.
    Tensor act = be().act({2, 8});
    be().copy_(act, dst.rows(1, 3));
    expect_equal(act, s, "copy_ f32 -> activations");
    // Into bf16 storage: the values the backend holds, rounded to nearest even.
    const Tensor unrounded = dev(random_tensor({2, 8}, DType::f32, 14));
    Tensor b16 = be().empty({2, 8}, DType::bf16);
    be().copy_(b16, unrounded);
    std::vector<double> rounded;
    for (double v : held(unrounded)) rounded.push_back(bf16_to_f32(f32_to_bf16(static_cast<float>(v))));
    expect_equal(b16, rounded, "copy_ into bf16");
    EXPECT_THROW(be().copy_(dst, dev(src)), Error);  // 32 vs 16 elements
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

TEST_P(Elementwise, TopPicksEqualTheHostScan) {
    for (int64_t N : {256000, 1001, 50}) {  // Gemma's vocabulary (16-byte vectors), the scalar path, a few
        Tensor h = random_host({4, N}, -30.0f, 30.0f);
        float* x = h.data<float>();
        x[0 * N + 17] = x[0 * N + N - 3] = 40.0f;  // row 0: a tie for the top (the first index wins, margin 0)
        x[1 * N + N - 1] = 50.0f;                  // row 1: the top in the last element
        x[1 * N + 2] = 49.5f;
        for (int64_t i = 0; i < N; ++i) x[2 * N + i] = -INFINITY;  // row 2: nothing above -inf
        x[3 * N + 5] = NAN;                                           // row 3: a NaN is never the pick
        const std::vector<TopPick> got = be().top_picks(dev(h));
        ASSERT_EQ(got.size(), 4u);
        for (int64_t r = 0; r < 4; ++r) {
            const TopPick want = top_pick(x + r * N, N);
            EXPECT_EQ(got[r].id, want.id) << "N=" << N << " row " << r;
            if (std::isnan(want.margin)) EXPECT_TRUE(std::isnan(got[r].margin)) << "N=" << N << " row " << r;
            else EXPECT_EQ(got[r].margin, want.margin) << "N=" << N << " row " << r;
        }
        EXPECT_EQ(got[0].id, 17);
        EXPECT_EQ(got[0].margin, 0.0f);
        EXPECT_EQ(got[1].id, N - 1);
        EXPECT_EQ(got[1].margin, 0.5f);
        EXPECT_EQ(got[2].id, 0);
        EXPECT_NE(got[3].id, 5);
    }
    EXPECT_THROW(be().top_picks(Tensor()), Error);
}

}  // namespace

VIDI_BACKEND_SUITE(Elementwise);
