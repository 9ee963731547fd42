// linear(): every weight dtype, the fused small-row path, the blocked sgemm path (with
// several blocks), bias handling and shape errors.
#include <gtest/gtest.h>

#include "backend/ref_util.h"

using namespace vidi;
using namespace vidi::test;

namespace {

std::vector<double> linear_ref(const Tensor& x, const Tensor& w, const Tensor& b) {
    const int64_t N = w.dim(0), K = w.dim(1), M = x.numel() / K;
    auto xv = values(x), wv = values(w);
    std::vector<double> bv = b.defined() ? values(b) : std::vector<double>(N, 0.0);
    std::vector<double> y(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            double s = bv[n];
            for (int64_t k = 0; k < K; ++k) s += xv[m * K + k] * wv[n * K + k];
            y[m * N + n] = s;
        }
    return y;
}

struct Case {
    DType wdtype;
    int64_t M, N, K;
    bool bias;
};

}  // namespace

class LinearTest : public ::testing::TestWithParam<Case> {};

TEST_P(LinearTest, MatchesDoubleReference) {
    const Case c = GetParam();
    auto be = test_backend();
    Tensor x = random_tensor({c.M, c.K}, DType::f32, 1);
    Tensor w = random_tensor({c.N, c.K}, c.wdtype, 2);
    Tensor b = c.bias ? random_tensor({c.N}, DType::bf16, 3) : Tensor();
    Tensor y = be->linear(x, be->weight(w), b);
    ASSERT_EQ(y.shape(), (Shape{c.M, c.N}));
    EXPECT_LT(rel_err(y, linear_ref(x, w, b)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearTest,
    ::testing::Values(Case{DType::f32, 7, 33, 65, true}, Case{DType::f32, 1, 10, 8, false},
                      Case{DType::bf16, 1, 257, 300, true},   // fused single-row path
                      Case{DType::bf16, 4, 31, 129, false},   // fused, several rows
                      Case{DType::f16, 3, 40, 64, true},      // fused, f16
                      Case{DType::bf16, 37, 300, 8192, true},  // blocked: several tasks of converted tiles
                      Case{DType::f16, 19, 70, 100, false}));  // blocked, one partial block

TEST(Linear, KeepsLeadingDimensions) {
    auto be = test_backend();
    Tensor x = random_tensor({2, 3, 16}, DType::f32, 4);
    Tensor w = random_tensor({5, 16}, DType::bf16, 5);
    Tensor y = be->linear(x, w);
    EXPECT_EQ(y.shape(), (Shape{2, 3, 5}));
    EXPECT_LT(rel_err(y, linear_ref(x.reshape({6, 16}), w, {})), 1e-5);
}

TEST(Linear, RejectsMismatchedShapes) {
    auto be = test_backend();
    Tensor x = random_tensor({2, 16}, DType::f32, 4);
    EXPECT_THROW(be->linear(x, random_tensor({5, 15}, DType::bf16, 5)), Error);
    EXPECT_THROW(be->linear(x, random_tensor({5, 16}, DType::bf16, 5), random_tensor({4}, DType::f32, 6)), Error);
    EXPECT_THROW(be->linear(random_tensor({2, 16}, DType::bf16, 4), random_tensor({5, 16}, DType::bf16, 5)), Error);
}

TEST(Linear, IntoViewsOfLargerTensors) {
    auto be = test_backend();
    Tensor x = random_tensor({2, 16}, DType::f32, 4);
    const QTensor wq(random_tensor({6, 16}, DType::bf16, 5)), wk(random_tensor({4, 16}, DType::bf16, 6));
    Tensor q = Tensor::empty({2, 6}, DType::f32), cache = random_tensor({5, 4}, DType::f32, 7);
    const std::vector<double> before = values(cache);
    Tensor k = cache.rows(2, 4);
    be->linear_into_({&q, &k}, x, {&wq, &wk});
    EXPECT_LT(rel_err(q, linear_ref(x, wq.values, {})), 1e-6);
    std::vector<double> want = before;
    const std::vector<double> rows = linear_ref(x, wk.values, {});
    std::copy(rows.begin(), rows.end(), want.begin() + 2 * 4);
    EXPECT_LT(rel_err(cache, want), 1e-6);
    Tensor small = Tensor::empty({2, 3}, DType::f32);
    EXPECT_THROW(be->linear_into_({&small}, x, {&wq}), Error);
    EXPECT_THROW(be->linear_into_({&q, &k}, x, {&wq}), Error);
}

TEST(Linear, GeluAndAddIntoTheOutput) {
    auto be = test_backend();
    Tensor x = random_tensor({3, 16}, DType::f32, 8, -2.0f, 2.0f);
    const Tensor w = random_tensor({5, 16}, DType::bf16, 9), b = random_tensor({5}, DType::bf16, 10);
    const std::vector<double> lin = linear_ref(x, w, b);
    std::vector<double> ref = lin;
    for (double& v : ref) v = gelu_tanh_ref(v);
    EXPECT_LT(rel_err(be->linear_gelu(x, be->weight(w), b, Gelu::tanh), ref), 1e-5);
    Tensor y = random_tensor({3, 5}, DType::f32, 11);
    ref = values(y);
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += lin[i];
    be->linear_add_(y, x, be->weight(w), b);
    EXPECT_LT(rel_err(y, ref), 1e-5);
    Tensor wrong = Tensor::empty({3, 4}, DType::f32);
    EXPECT_THROW(be->linear_add_(wrong, x, be->weight(w), b), Error);
}

// The LM head (Backend::logits): f32 from the product's accumulator, soft-capped in f32, for
// float and quantised weights, and the greedy pick over it.
TEST(Logits, SoftCappedInF32) {
    auto be = test_backend();
    const Tensor x = random_tensor({3, 64}, DType::f32, 12, -2.0f, 2.0f);
    const Tensor w = random_tensor({40, 64}, DType::bf16, 13);
    for (float cap : {0.0f, 30.0f, 2.0f}) {
        const QTensor wq = be->linear_weight(QTensor(w));
        const Tensor y = be->logits(x, wq, cap);
        EXPECT_EQ(y.dtype(), DType::f32);
        ASSERT_EQ(y.shape(), (Shape{3, 40}));
        std::vector<double> ref = linear_ref(x, w, {});
        if (cap > 0)
            for (double& v : ref) v = cap * std::tanh(v / cap);
        EXPECT_LT(rel_err(y, ref), 1e-6) << "cap " << cap;
    }
    const QTensor q8 = be->quantized_weight(w, QuantFormat{8, 0});
    const Tensor y8 = be->logits(x, q8, 30.0f);
    EXPECT_EQ(y8.dtype(), DType::f32);
    EXPECT_LT(rel_err(y8, values(be->logits(x, be->linear_weight(QTensor(w)), 30.0f))), 2e-2);
}

TEST(Logits, NearTiesThatBf16WouldMergeArePickedInF32) {
    // Row n of the head gives 20 + d_n before the 30·tanh soft-cap: d = 1/32 and 1/16 are one
    // bf16 step apart before the cap and merge into one bf16 value after it; f32 keeps them
    // apart, and the exact tie (rows 1 and 2) goes to the first index, as torch.argmax.
    auto be = test_backend();
    const std::vector<float> head = {20.0f, 0.03125f, 20.0f, 0.0625f, 20.0f, 0.0625f, 19.875f, 0.0f};
    Tensor w = Tensor::empty({4, 2}, DType::bf16);
    convert_from_f32(head.data(), DType::bf16, w.raw(), head.size());
    const Tensor x = Tensor::from_vector(std::vector<float>{1.0f, 1.0f}, {1, 2});
    const Tensor y = be->logits(x, be->linear_weight(QTensor(w)), 30.0f);
    const std::vector<float> v = y.to_f32_vector();
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(v[0])), bf16_to_f32(f32_to_bf16(v[1])));  // bf16 would see a tie
    EXPECT_GT(v[1], v[0]);
    EXPECT_EQ(v[1], v[2]);
    const TopPick p = be->top_picks(y)[0];
    EXPECT_EQ(p.id, 1);
    EXPECT_EQ(p.margin, 0.0f);  // rows 1 and 2 tie
    const TopPick first = top_pick(v.data(), 2);
    EXPECT_EQ(first.id, 1);
    EXPECT_EQ(first.margin, v[1] - v[0]);
}
