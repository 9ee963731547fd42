// Quantised storage against the host reference of core/quantize.cpp: linear with int8/int4
// weights (a GPU's fused few-row kernel, its slab path and the shapes the fused kernel does
// not take) against a double matmul with the dequantised weights; the backend's quantize()
// against the host codes; attention with int8 K/V against the same op on the dequantised K/V;
// embeddings from quantised tables.
#include <cmath>

#include "backend/backend_test.h"
#include "core/quantize.h"

using namespace vidi;
using namespace vidi::test;

namespace {

QuantFormat format(int bits, int group) {
    QuantFormat f;
    f.bits = bits;
    f.group = group;
    return f;
}

class Quant : public BackendTest {
protected:
    // A backend QTensor as stored (codes and scales) on the host.
    QTensor to_host(const QTensor& q) const { return QTensor(host(q.values), host(q.scales), q.bits, q.group); }

    // The backend's quantisation of x (default: quantize() of x uploaded) against the host's.
    void expect_same_quantization(const Tensor& x, const QuantFormat& f, const QTensor* got_backend = nullptr) const {
        const QTensor want = vidi::quantize(x, f);  // x holds 16-bit values: both sides see the same inputs
        const QTensor got = to_host(got_backend ? *got_backend : be().quantize(dev(x), f));
        const std::string what = cat(f.name(), " of ", x.describe());
        ASSERT_EQ(got.bits, want.bits) << what;
        ASSERT_EQ(got.group, want.group) << what;
        ASSERT_EQ(got.values.shape(), want.values.shape()) << what;
        ASSERT_EQ(got.values.dtype(), want.values.dtype()) << what;
        ASSERT_EQ(got.scales.shape(), want.scales.shape()) << what;
        const auto* gc = static_cast<const uint8_t*>(got.values.raw());
        const auto* wc = static_cast<const uint8_t*>(want.values.raw());
        for (size_t i = 0; i < want.values.nbytes(); ++i) ASSERT_EQ(gc[i], wc[i]) << what << ": code byte " << i;
        const float* gs = got.scales.data<float>();
        const float* ws = want.scales.data<float>();
        for (int64_t i = 0; i < want.scales.numel(); ++i)
            ASSERT_LE(std::fabs(gs[i] - ws[i]), 1e-6f * std::fabs(ws[i])) << what << ": scale " << i;
    }
};

struct QuantLinearCase {
    int bits, group;  // group 0: per channel
    int64_t M, N, K;
    bool bias;
};

class QuantLinear : public BackendCaseTest<QuantLinearCase> {};

TEST_P(QuantLinear, MatchesDequantizedReference) {
    const QuantLinearCase c = the_case();
    const Tensor x = random_host({c.M, c.K}, -2.0f, 2.0f), w = random_host({c.N, c.K}), b = random_host({c.N});
    const QTensor wq = vidi::quantize(w, format(c.bits, c.group));
    const QTensor wd = be().linear_weight(wq);
    EXPECT_EQ(wd.device(), be().device());
    EXPECT_EQ(wd.bits, c.bits);
    const Tensor y = be().linear(dev(x), wd, c.bias ? dev(b) : Tensor());
    EXPECT_EQ(y.shape(), (Shape{c.M, c.N}));
    EXPECT_EQ(y.dtype(), act());
    expect_close(y, linear_ref(x, dequantize(wq), c.bias ? b : Tensor()), tol(1e-5),
                 cat("linear ", wq.describe(), " M=", c.M, c.bias ? " +bias" : ""));
}

std::vector<QuantLinearCase> linear_cases() {
    std::vector<QuantLinearCase> cases;
    const std::pair<int, int> formats[] = {{8, 0}, {8, 64}, {4, 64}, {4, 128}};
    for (auto [bits, group] : formats) {
        // M ≤ 16: a GPU's fused kernel (one or two column tiles); above: dequantised slabs + GEMM.
        for (int64_t M : {1, 3, 8, 9, 16, 17, 64, 300}) cases.push_back({bits, group, M, 1000, 640, M % 2 == 1});
        cases.push_back({bits, group, 1, 4096, 3584, false});  // Gemma q_proj shape, many k-tiles per warp
        cases.push_back({bits, group, 2, 300, 14336, true});   // down_proj depth
        cases.push_back({bits, group, 4, 37, 128, true});      // fewer rows than one block
    }
    // Shapes a GPU's fused kernel does not take (K or group not a multiple of 64): slab path at M = 1.
    cases.push_back({8, 32, 1, 70, 96, true});
    cases.push_back({4, 32, 3, 70, 96, false});
    cases.push_back({8, 0, 1, 33, 200, false});
    cases.push_back({4, 10, 5, 21, 40, true});
    return cases;
}

VIDI_BACKEND_CASE_SUITE(QuantLinear, ::testing::ValuesIn(linear_cases()));

TEST_P(Quant, LinearOfManyRowsAndAWideWeight) {
    // A GPU's 32 MiB of 16-bit scratch holds 2048 rows of K = 8192: N = 5000 takes three slabs,
    // the last one partial.
    const int64_t M = 40, N = 5000, K = 8192;
    const Tensor x = random_host({M, K}), w = random_host({N, K}), b = random_host({N});
    const QTensor wq = vidi::quantize(w, format(4, 64));
    const Tensor y = be().linear(dev(x), be().linear_weight(wq), dev(b));
    expect_close(y, linear_ref(x, dequantize(wq), b), tol(1e-5), "linear int4/g64 M=40 N=5000 K=8192");
}

TEST_P(Quant, FloatWeightsStayFloat) {
    const Tensor x = random_host({3, 64}), w = random_host({20, 64});
    const QTensor wd = be().linear_weight(QTensor(w));
    EXPECT_FALSE(wd.quantized());
    expect_close(be().linear(dev(x), wd), linear_ref(x, w), tol(1e-5), "linear of a float weight through linear_weight");
}

TEST_P(Quant, LinearShapeErrors) {
    const QTensor wd = be().linear_weight(vidi::quantize(random_host({16, 128}), format(4, 64)));
    EXPECT_THROW(be().linear(dev(random_host({2, 64})), wd), Error);                            // K mismatch
    EXPECT_THROW(be().linear(dev(random_host({2, 128})), wd, dev(random_host({15}))), Error);  // bias
}

TEST_P(Quant, CodesAndScalesMatchTheHost) {
    const Tensor x = random_host({13, 1024}, -3.0f, 3.0f);
    float* p = x.data<float>();
    // Ties of magnitude (the int4 extreme is the first one), a zero group, exact halves.
    p[0] = -2.5f, p[5] = 2.5f, p[64] = 3.0f, p[70] = -3.0f;
    for (int i = 128; i < 256; ++i) p[i] = 0.0f;
    for (int i = 256; i < 320; ++i) p[i] = 0.5f * float(i - 288);
    for (auto [bits, group] : {std::pair<int, int>{8, 0}, {8, 64}, {8, 2}, {4, 64}, {4, 128}, {4, 2}, {4, 0}})
        expect_same_quantization(x, format(bits, group));
}

TEST_P(Quant, WeightsQuantisedAtLoadEqualTheHost) {
    // A bf16 host weight of several of a GPU's 32 MiB slices' worth of rows, at a small K.
    const Tensor f32 = random_host({9000, 2048}, -0.1f, 0.1f);
    Tensor w = Tensor::empty(f32.shape(), DType::bf16);
    convert_from_f32(f32.data<float>(), DType::bf16, w.raw(), static_cast<size_t>(f32.numel()));
    for (auto [bits, group] : {std::pair<int, int>{8, 0}, {4, 64}}) {
        const QTensor got = be().quantized_weight(w, format(bits, group));
        ASSERT_EQ(got.device(), be().device());
        expect_same_quantization(w, format(bits, group), &got);
    }
}

TEST_P(Quant, MediaKeyValuesPerTokenAndHead) {
    for (int hd : {64, 256}) expect_same_quantization(random_host({333, 8, hd}, -8.0f, 8.0f), format(8, hd));
}

TEST_P(Quant, QuantizeErrors) {
    EXPECT_THROW(be().quantize(dev(random_host({2, 64})), format(16, 0)), Error);  // not quantised
    EXPECT_THROW(be().quantize(dev(random_host({2, 60})), format(8, 64)), Error);  // group does not divide
    EXPECT_THROW(be().quantize(dev(random_host({2, 6})), format(4, 3)), Error);    // odd int4 group
}

// The int8 K/V and their dequantised values differ only by a GPU's rounding to its activation
// dtype after dequantising (~2^-9 relative per value in bf16), hence 1e-2 there rather than
// the 2e-3 of identical arithmetic.
constexpr double kInt8AttentionTol = 1e-2;

TEST_P(Quant, Int8KeyValuesMatchDequantizedFloat) {
    const int H = 8, KV = 2;
    for (int hd : {64, 256})
        for (int64_t Tk : {7, 1000, 40000})
            for (int64_t Tq : {1, 4, 30}) {
                AttentionParams p;
                p.scale = 1.0f / std::sqrt(float(hd));
                p.softcap = 50.0f;
                const Tensor q = dev(random_host({Tq, H, hd}, -2.0f, 2.0f));
                const Tensor k = dev(random_host({Tk, KV, hd}, -2.0f, 2.0f)), v = dev(random_host({Tk, KV, hd}));
                const QTensor k8 = be().quantize(k, format(8, hd)), v8 = be().quantize(v, format(8, hd));
                const Tensor kd = dev(dequantize(to_host(k8))), vd = dev(dequantize(to_host(v8)));
                const Tensor want = be().attention(q, kd, vd, p);
                const Tensor got = be().attention(q, k8, v8, p);
                EXPECT_EQ(got.shape(), (Shape{Tq, H, hd}));
                expect_close(got, held(want), gpu() ? kInt8AttentionTol : 1e-5,
                             cat("int8 K/V attention Tq=", Tq, " Tk=", Tk, " hd=", hd));
                if (HasFailure()) return;
            }
}

TEST_P(Quant, Int8KeyValuesWithCausalWindowOverManyKeys) {
    const int64_t Tk = 5003;
    AttentionParams p;
    p.scale = 0.1f;
    p.causal = true;
    p.window = 700;
    p.q_pos0 = Tk - 3;
    const Tensor q = dev(random_host({3, 16, 128}, -2.0f, 2.0f));
    const QTensor k8 = be().quantize(dev(random_host({Tk, 8, 128}, -2.0f, 2.0f)), format(8, 128));
    const QTensor v8 = be().quantize(dev(random_host({Tk, 8, 128})), format(8, 128));
    const Tensor want = be().attention(q, dev(dequantize(to_host(k8))), dev(dequantize(to_host(v8))), p);
    expect_close(be().attention(q, k8, v8, p), held(want), gpu() ? kInt8AttentionTol : 1e-5,
                 "int8 K/V causal window split-K");
}

TEST_P(Quant, BadKeyValuesAreErrors) {
    AttentionParams p;
    const Tensor q = dev(random_host({2, 4, 64}));
    const Tensor kf = dev(random_host({9, 2, 64}));
    const QTensor k8 = be().quantize(kf, format(8, 64));
    EXPECT_THROW(be().attention(q, k8, kf, p), Error);  // int8 k with float v
    EXPECT_THROW(be().attention(q, kf, k8, p), Error);
    const QTensor g32 = be().quantize(kf, format(8, 32));
    EXPECT_THROW(be().attention(q, g32, g32, p), Error);  // group != head_dim
    const QTensor k4 = be().quantize(kf, format(4, 64));
    EXPECT_THROW(be().attention(q, k4, k4, p), Error);  // 4-bit K/V
}

TEST_P(Quant, EmbedGathersDequantizedRows) {
    const std::vector<int32_t> ids = {3, 0, 299, 3, 17, 150};
    for (auto [bits, group, D] : {std::tuple<int, int, int64_t>{8, 0, 640}, {8, 64, 640}, {4, 64, 640},
                                  {4, 128, 640}, {4, 10, 100}, {8, 5, 100}}) {
        const int64_t V = 300;
        const QTensor tq = vidi::quantize(random_host({V, D}), format(bits, group));
        const Tensor full = dequantize(tq);
        std::vector<double> ref;
        for (int32_t id : ids)
            for (int64_t d = 0; d < D; ++d) ref.push_back(full.data<float>()[id * D + d]);
        const QTensor table = be().linear_weight(tq);
        const Tensor out = be().embed(table, ids);
        EXPECT_EQ(out.shape(), (Shape{int64_t(ids.size()), D}));
        expect_equal(out, stored(ref), cat("embed ", tq.describe()));  // code·scale rounded once as stored
        EXPECT_THROW(be().embed(table, {1, 300}), Error);
        EXPECT_THROW(be().embed(table, {-1}), Error);
    }
}

}  // namespace

VIDI_BACKEND_SUITE(Quant);
