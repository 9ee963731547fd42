// Quantised storage on the GPU against the host reference of core/quantize.cpp: linear
// with int8/int4 weights (the fused few-row kernel, the slab path and the fallback for
// shapes the fused kernel does not take) against a double matmul with the dequantised
// weights; device quantize() against the host codes; attention with int8 K/V against the
// same kernel on the dequantised K/V; embeddings from quantised tables.
#include <cmath>

#include "backend/cuda/kernels.h"
#include "core/quantize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaQuantLinearPaths : public CudaDtypes {};
class CudaQuantLinearErrors : public CudaDtypes {};
class CudaQuantize : public CudaDtypes {};
class CudaQuantizeErrors : public CudaDtypes {};
class CudaQuantAttention : public CudaDtypes {};
class CudaQuantAttentionErrors : public CudaDtypes {};
class CudaQuantEmbed : public CudaDtypes {};

QuantFormat format(int bits, int group) {
    QuantFormat f;
    f.bits = bits;
    f.group = group;
    return f;
}

// A device QTensor back to a host one (codes and scales as stored).
QTensor to_host(const QTensor& q) {
    return QTensor(backend().to_host(q.values), backend().to_host(q.scales), q.bits, q.group);
}

// --- linear ------------------------------------------------------------------------------

struct QuantLinearCase {
    int bits, group;  // group 0: per channel
    int64_t M, N, K;
    bool bias;
};

void PrintTo(const QuantLinearCase& c, std::ostream* os) {
    *os << format(c.bits, c.group).name() << " M=" << c.M << " N=" << c.N << " K=" << c.K << (c.bias ? " +bias" : "");
}

class CudaQuantLinear : public ::testing::TestWithParam<QuantLinearCase> {};

TEST_P(CudaQuantLinear, MatchesDequantizedReference) {
    const QuantLinearCase c = GetParam();
    const Tensor x = random_host({c.M, c.K}, -2.0f, 2.0f), w = random_host({c.N, c.K}), b = random_host({c.N});
    const QTensor wq = vidi::quantize(w, format(c.bits, c.group));
    const Tensor w_ref = dequantize(wq);
    for_each_act([&] {
        const QTensor wd = backend().linear_weight(wq);
        EXPECT_EQ(wd.device(), Device::cuda);
        EXPECT_EQ(wd.bits, c.bits);
        const Tensor y = backend().linear(dev(x), wd, c.bias ? dev(b) : Tensor());
        EXPECT_EQ(y.shape(), (Shape{c.M, c.N}));
        EXPECT_EQ(y.dtype(), act());
        expect_close(y, linear_reference(x, w_ref, c.bias ? &b : nullptr, c.M, c.N, c.K), tol(),
                     cat("linear ", wq.describe(), " M=", c.M, c.bias ? " +bias" : ""));
    });
}

std::vector<QuantLinearCase> linear_cases() {
    std::vector<QuantLinearCase> cases;
    const std::pair<int, int> formats[] = {{8, 0}, {8, 64}, {4, 64}, {4, 128}};
    for (auto [bits, group] : formats) {
        // M ≤ 16: fused kernel (one or two column tiles); above: dequantised slabs + GEMM.
        for (int64_t M : {1, 3, 8, 9, 16, 17, 64, 300}) cases.push_back({bits, group, M, 1000, 640, M % 2 == 1});
        cases.push_back({bits, group, 1, 4096, 3584, false});  // Gemma q_proj shape, many k-tiles per warp
        cases.push_back({bits, group, 2, 300, 14336, true});   // down_proj depth
        cases.push_back({bits, group, 4, 37, 128, true});      // fewer rows than one block
    }
    // Shapes the fused kernel does not take (K or group not a multiple of 64): slab path at M = 1.
    cases.push_back({8, 32, 1, 70, 96, true});
    cases.push_back({4, 32, 3, 70, 96, false});
    cases.push_back({8, 0, 1, 33, 200, false});
    cases.push_back({4, 10, 5, 21, 40, true});
    return cases;
}

INSTANTIATE_TEST_SUITE_P(Formats, CudaQuantLinear, ::testing::ValuesIn(linear_cases()));

TEST_P(CudaQuantLinearPaths, LargeMUsesSeveralSlabs) {
    // 32 MiB of 16-bit scratch holds 2048 rows of K = 8192: N = 5000 needs three slabs, the
    // last one partial.
    const int64_t M = 40, N = 5000, K = 8192;
    const Tensor x = random_host({M, K}), w = random_host({N, K}), b = random_host({N});
    const QTensor wq = vidi::quantize(w, format(4, 64));
    const Tensor y = backend().linear(dev(x), backend().linear_weight(wq), dev(b));
    expect_close(y, linear_reference(x, dequantize(wq), &b, M, N, K), tol(), "linear int4/g64 M=40 N=5000 K=8192");
}

TEST_P(CudaQuantLinearPaths, FloatWeightsAreHeldInTheActivationDtype) {
    const Tensor x = random_host({3, 64}), w = random_host({20, 64});
    const QTensor wd = backend().linear_weight(QTensor(w));
    EXPECT_FALSE(wd.quantized());
    EXPECT_EQ(wd.values.dtype(), act());
    expect_close(backend().linear(dev(x), wd), linear_reference(x, w, nullptr, 3, 20, 64), tol(),
                 cat("linear ", dtype_name(act()), " through linear_weight"));
}

TEST_P(CudaQuantLinearErrors, BadInputsAreErrors) {
    const QTensor wq = vidi::quantize(random_host({16, 128}), format(4, 64));
    const QTensor wd = backend().linear_weight(wq);
    EXPECT_THROW(backend().linear(dev(random_host({2, 64})), wd), Error);                     // K mismatch
    EXPECT_THROW(backend().linear(dev(random_host({2, 128})), wq), Error);                    // host weight
    EXPECT_THROW(backend().linear(dev(random_host({2, 128})), wd, dev(random_host({15}))), Error);  // bias
    QTensor bad_scales = wd;
    bad_scales.scales = wd.scales.reshape({32, 1});
    EXPECT_THROW(backend().linear(dev(random_host({2, 128})), bad_scales), Error);
    QTensor bad_bits = wq;
    bad_bits.bits = 2;
    EXPECT_THROW(backend().linear_weight(bad_bits), Error);
}

// --- quantize ------------------------------------------------------------------------------

// `got_device`: the device's result for x (default: quantize() of x uploaded).
void expect_same_quantization(const Tensor& x, const QuantFormat& f, const QTensor* got_device = nullptr) {
    const QTensor want = vidi::quantize(x, f);  // x holds 16-bit values: both sides see the same inputs
    const QTensor got = to_host(got_device ? *got_device : backend().quantize(dev(x), f));
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

TEST_P(CudaQuantize, CodesAndScalesMatchTheHost) {
    const Tensor x = random_host({13, 1024}, -3.0f, 3.0f);
    float* p = x.data<float>();
    // Ties of magnitude (the int4 extreme is the first one), a zero group, exact halves.
    p[0] = -2.5f, p[5] = 2.5f, p[64] = 3.0f, p[70] = -3.0f;
    for (int i = 128; i < 256; ++i) p[i] = 0.0f;
    for (int i = 256; i < 320; ++i) p[i] = 0.5f * float(i - 288);
    for (auto [bits, group] : {std::pair<int, int>{8, 0}, {8, 64}, {8, 2}, {4, 64}, {4, 128}, {4, 2}, {4, 0}})
        expect_same_quantization(x, format(bits, group));
}

TEST_P(CudaQuantize, WeightsQuantisedAtLoadOnTheDeviceEqualTheHost) {
    // A bf16 host weight of several 32 MiB slices' worth of rows... at a small K: 9000 rows x 2048.
    const Tensor f32 = random_host({9000, 2048}, -0.1f, 0.1f);
    Tensor w = Tensor::empty(f32.shape(), DType::bf16);
    convert_from_f32(f32.data<float>(), DType::bf16, w.raw(), static_cast<size_t>(f32.numel()));
    for (auto [bits, group] : {std::pair<int, int>{8, 0}, {4, 64}}) {
        const QTensor got = backend().quantized_weight(w, format(bits, group));
        ASSERT_EQ(got.device(), Device::cuda);
        expect_same_quantization(w, format(bits, group), &got);
    }
}

TEST_P(CudaQuantize, MediaKeyValuesPerTokenAndHead) {
    for (int hd : {64, 256}) expect_same_quantization(random_host({333, 8, hd}, -8.0f, 8.0f), format(8, hd));
}

TEST_P(CudaQuantizeErrors, BadInputsAreErrors) {
    EXPECT_THROW(backend().quantize(random_host({2, 64}), format(8, 0)), Error);       // host tensor
    EXPECT_THROW(backend().quantize(dev(random_host({2, 64})), format(16, 0)), Error);  // not quantised
    EXPECT_THROW(backend().quantize(dev(random_host({2, 60})), format(8, 64)), Error);  // group does not divide
    EXPECT_THROW(backend().quantize(dev(random_host({2, 6})), format(4, 3)), Error);    // odd int4 group
}

// --- attention with int8 K/V -----------------------------------------------------------------

struct KvDims {
    int64_t Tq, Tk;
    int hd;
};

// The few-row kernel applies the int8 scales in f32 (to the score and to p_j); the float
// path sees K/V rounded to the activation dtype after dequantising. The two differ by that
// rounding (~2^-9 relative per value in bf16), hence 1e-2 rather than the 2e-3 of identical
// arithmetic.
constexpr double kInt8AttentionTol = 1e-2;

TEST_P(CudaQuantAttention, Int8KeyValuesMatchDequantizedFloat) {
    const int H = 8, KV = 2;
    for (int hd : {64, 256})
        for (int64_t Tk : {7, 1000, 40000})
            for (int64_t Tq : {1, 4, 30}) {
                AttentionParams p;
                p.scale = 1.0f / std::sqrt(float(hd));
                p.softcap = 50.0f;
                const Tensor q = dev(random_host({Tq, H, hd}, -2.0f, 2.0f));
                const Tensor k = dev(random_host({Tk, KV, hd}, -2.0f, 2.0f)), v = dev(random_host({Tk, KV, hd}));
                const QTensor k8 = backend().quantize(k, format(8, hd)), v8 = backend().quantize(v, format(8, hd));
                const Tensor kd = dev(dequantize(to_host(k8))), vd = dev(dequantize(to_host(v8)));
                const Tensor want = backend().attention(q, kd, vd, p);
                const Tensor got = backend().attention(q, k8, v8, p);
                EXPECT_EQ(got.shape(), (Shape{Tq, H, hd}));
                expect_close(got, as_doubles(backend().to_host(want)), kInt8AttentionTol,
                             cat("int8 K/V attention Tq=", Tq, " Tk=", Tk, " hd=", hd));
                if (::testing::Test::HasFailure()) return;
            }
}

TEST_P(CudaQuantAttention, Int8KeyValuesWithCausalMaskAndSplitK) {
    const int64_t Tk = 5003;
    AttentionParams p;
    p.scale = 0.1f;
    p.causal = true;
    p.window = 700;
    p.q_pos0 = Tk - 3;
    AttentionArgs a;
    a.Tq = 3, a.Tk = Tk, a.H = 16, a.KV = 8, a.hd = 128, a.causal = true, a.window = 700, a.q_pos0 = p.q_pos0;
    EXPECT_GT(attention_splits(a, backend().sm_count()), 1);
    const Tensor q = dev(random_host({3, 16, 128}, -2.0f, 2.0f));
    const QTensor k8 = backend().quantize(dev(random_host({Tk, 8, 128}, -2.0f, 2.0f)), format(8, 128));
    const QTensor v8 = backend().quantize(dev(random_host({Tk, 8, 128})), format(8, 128));
    const Tensor want = backend().attention(q, dev(dequantize(to_host(k8))), dev(dequantize(to_host(v8))), p);
    expect_close(backend().attention(q, k8, v8, p), as_doubles(backend().to_host(want)), kInt8AttentionTol,
                 "int8 K/V causal window split-K");
}

TEST_P(CudaQuantAttentionErrors, BadKeyValuesAreErrors) {
    AttentionParams p;
    const Tensor q = dev(random_host({2, 4, 64}));
    const Tensor kf = dev(random_host({9, 2, 64}));
    const QTensor k8 = backend().quantize(kf, format(8, 64));
    EXPECT_THROW(backend().attention(q, k8, kf, p), Error);  // int8 k with float v
    EXPECT_THROW(backend().attention(q, kf, k8, p), Error);
    const QTensor g32 = backend().quantize(kf, format(8, 32));
    EXPECT_THROW(backend().attention(q, g32, g32, p), Error);  // group != head_dim
    const QTensor k4 = backend().quantize(kf, format(4, 64));
    EXPECT_THROW(backend().attention(q, k4, k4, p), Error);  // 4-bit K/V
}

// --- embed -----------------------------------------------------------------------------------

TEST_P(CudaQuantEmbed, GathersDequantizedRows) {
    const std::vector<int32_t> ids = {3, 0, 299, 3, 17, 150};
    for (auto [bits, group, D] : {std::tuple<int, int, int64_t>{8, 0, 640}, {8, 64, 640}, {4, 64, 640},
                                  {4, 128, 640}, {4, 10, 100}, {8, 5, 100}}) {
        const int64_t V = 300;
        const QTensor tq = vidi::quantize(random_host({V, D}), format(bits, group));
        const Tensor full = dequantize(tq);
        std::vector<double> ref;
        for (int32_t id : ids)
            for (int64_t d = 0; d < D; ++d)  // the device rounds code·scale to the activation dtype once
                ref.push_back(round_act(full.data<float>()[id * D + d]));
        const QTensor table = backend().linear_weight(tq);
        const Tensor out = backend().embed(table, ids);
        EXPECT_EQ(out.shape(), (Shape{int64_t(ids.size()), D}));
        expect_equal(out, ref, cat("embed ", tq.describe()));
        EXPECT_THROW(backend().embed(table, {1, 300}), Error);
        EXPECT_THROW(backend().embed(table, {-1}), Error);
    }
}

VIDI_CUDA_DTYPES(CudaQuantLinearPaths);
VIDI_CUDA_DTYPES(CudaQuantLinearErrors);
VIDI_CUDA_DTYPES(CudaQuantize);
VIDI_CUDA_DTYPES(CudaQuantizeErrors);
VIDI_CUDA_DTYPES(CudaQuantAttention);
VIDI_CUDA_DTYPES(CudaQuantAttentionErrors);
VIDI_CUDA_DTYPES(CudaQuantEmbed);

}  // namespace
}  // namespace vidi::cuda::test
