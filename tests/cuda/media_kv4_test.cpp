// 4-bit media K/V on the GPU (core's media_kv_format: keys per channel over blocks of 128
// tokens with zero points, values per token in groups, f16 scales), in both activation
// dtypes: the device quantiser gives the host's codes, scales and zeros exactly; attention over
// int4 K/V (the few-row kernel, the tiled kernel, split-K, adding into an output) against a
// double reference over the host-dequantised K/V; a recorded decoding step that reads int4
// media K/V equals the same ops run directly.
#include <cmath>
#include <cstring>

#include "backend/cuda/kernels.h"
#include "core/quantize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaMediaKv4 : public CudaDtypes {};

// A device QTensor back to the host, as stored.
QTensor to_host(const QTensor& q) {
    return QTensor(backend().to_host(q.values), backend().to_host(q.scales),
                   q.zeros.defined() ? backend().to_host(q.zeros) : Tensor(), q.bits, q.group, q.block);
}

// Keys [T, KV, hd] with channel 3 of every head offset by 12 (an outlier channel), every value
// one that bf16 and f16 both hold (12 + x rounded as random_host rounds), so the device and the
// host quantise the same numbers.
Tensor outlier_keys(int64_t T, int64_t KV, int64_t hd) {
    Tensor k = random_host({T, KV, hd}, -2.0f, 2.0f);
    for (int64_t r = 0; r < T * KV; ++r) {
        float& x = k.data<float>()[r * hd + 3];
        x = f16_to_f32(f32_to_f16(bf16_to_f32(f32_to_bf16(x + 12.0f))));
    }
    return k;
}

// `got` comes through to_host, which widens float tensors to f32 (exactly, for f16 scales and
// zeros): the host's tensor is compared in that form.
void expect_same_bytes(const Tensor& got, const Tensor& stored, const std::string& what) {
    const Tensor want = dtype_is_float(stored.dtype()) ? stored.to_f32() : stored;
    ASSERT_EQ(got.shape(), want.shape()) << what;
    ASSERT_EQ(got.dtype(), want.dtype()) << what;
    const auto* g = static_cast<const uint8_t*>(got.raw());
    const auto* w = static_cast<const uint8_t*>(want.raw());
    for (size_t i = 0; i < want.nbytes(); ++i) ASSERT_EQ(g[i], w[i]) << what << ": byte " << i;
}

// The bf16 tiled kernel rounds each dequantised key and value to the activation dtype (as
// int8 K/V do); the few-row kernel keeps them in f32 and only its output is rounded.
double kv4_tol() { return act() == DType::f16 ? 5e-3 : 1.5e-2; }

}  // namespace

TEST_P(CudaMediaKv4, DeviceQuantisationEqualsTheHost) {
    for (int64_t hd : {32, 64, 128, 256})
        for (int64_t T : {1, 127, 300, 4101}) {
            const Tensor x = outlier_keys(T, 4, hd);
            const MediaKvFormat f = media_kv_format(4, hd);
            for (const QuantFormat* side : {&f.key, &f.value}) {
                const QTensor want = vidi::quantize(x, *side);  // x holds 16-bit values: both see the same inputs
                const QTensor got = to_host(backend().quantize(dev(x), *side));
                const std::string what = cat(side->name(), " of ", x.describe());
                EXPECT_EQ(got.group, want.group) << what;
                EXPECT_EQ(got.block, want.block) << what;
                expect_same_bytes(got.values, want.values, what + " codes");
                expect_same_bytes(got.scales, want.scales, what + " scales");
                ASSERT_EQ(got.zeros.defined(), want.zeros.defined()) << what;
                if (want.zeros.defined()) expect_same_bytes(got.zeros, want.zeros, what + " zeros");
                if (::testing::Test::HasFailure()) return;
            }
        }
}

TEST_P(CudaMediaKv4, AttentionMatchesTheReferenceOverTheDequantisedKeysAndValues) {
    struct Case {
        int64_t Tq, Tk;
        int H, KV, hd;
    };
    // Few rows (1, 2, 4, 8 per KV head), the tiled kernel (30 queries), Gemma2-9B's heads, a
    // partial last key block, and enough keys for split-K.
    const Case cases[] = {{1, 300, 8, 2, 32},  {2, 1000, 8, 2, 64},  {1, 40000, 16, 8, 256}, {4, 5000, 16, 8, 256},
                          {30, 1000, 8, 2, 64}, {30, 3000, 16, 8, 256}, {1, 7, 4, 2, 128},     {3, 129, 8, 4, 128},
                          {40, 8000, 16, 8, 256}};
    for (const Case& c : cases) {
        AttentionParams p;
        p.scale = 1.0f / 16;
        p.softcap = 50.0f;
        const Tensor q = random_host({c.Tq, c.H, c.hd}, -1.0f, 1.0f);
        const Tensor k = outlier_keys(c.Tk, c.KV, c.hd), v = random_host({c.Tk, c.KV, c.hd});
        const MediaKvFormat f = media_kv_format(4, c.hd);
        const QTensor k4 = backend().quantize(dev(k), f.key), v4 = backend().quantize(dev(v), f.value);
        const Tensor got = backend().attention(dev(q), k4, v4, p);
        EXPECT_EQ(got.shape(), (Shape{c.Tq, c.H, c.hd}));
        const std::vector<double> want =
            vidi::test::attention_ref(q, dequantize(to_host(k4)), dequantize(to_host(v4)), p);
        expect_close(got, want, kv4_tol(), cat("int4 K/V attention Tq=", c.Tq, " Tk=", c.Tk, " H=", c.H, " KV=", c.KV,
                                               " hd=", c.hd));
        if (::testing::Test::HasFailure()) return;
    }
}

TEST_P(CudaMediaKv4, FewRowsAddIntoTheOutput) {
    const Tensor q = random_host({1, 16, 256}), k = outlier_keys(2000, 8, 256), v = random_host({2000, 8, 256});
    const MediaKvFormat f = media_kv_format(4, 256);
    const QTensor k4 = backend().quantize(dev(k), f.key), v4 = backend().quantize(dev(v), f.value);
    AttentionParams p;
    p.scale = 1.0f / 16;
    const Tensor base = random_host({1, 16, 256});
    Tensor out = dev(base);
    backend().attention_add_(out, dev(q), k4, v4, p);
    std::vector<double> want = vidi::test::attention_ref(q, dequantize(to_host(k4)), dequantize(to_host(v4)), p);
    for (size_t i = 0; i < want.size(); ++i) want[i] += base.data<float>()[i];
    expect_close(out, want, kv4_tol(), "int4 K/V attention_add_");
}

TEST_P(CudaMediaKv4, BadKeyValuesAreErrors) {
    const Tensor q = dev(random_host({2, 4, 64}));
    const Tensor x = dev(random_host({200, 2, 64}));
    const MediaKvFormat f = media_kv_format(4, 64);
    const QTensor k4 = backend().quantize(x, f.key), v4 = backend().quantize(x, f.value);
    AttentionParams p;
    EXPECT_THROW(backend().attention(q, v4, k4, p), Error);                                // sides swapped
    EXPECT_THROW(backend().attention(q, k4, backend().quantize(x, QuantFormat{8, 0}), p), Error);  // int4 with int8
    EXPECT_THROW(backend().attention(q, k4, x, p), Error);                                 // with float values
    QTensor short_scales = k4;
    short_scales.scales = k4.scales.rows(0, 1);  // one block's scales for 200 keys
    EXPECT_THROW(backend().attention(q, short_scales, v4, p), Error);
    p.causal = true;
    p.window = 16;
    EXPECT_THROW(backend().attention(q, k4, v4, p), Error);  // keys in blocks take no window
    QuantFormat asym_rows = f.value;
    asym_rows.zero_points = true;
    EXPECT_THROW(backend().quantize(x, asym_rows), Error);  // not a layout the GPU quantises
}

// A decoding step over int4 media K/V: embed, query, cross-attention added into the query's
// stream, f32 logits. Recorded once and replayed, it equals the ops run one by one.
TEST_P(CudaMediaKv4, RecordedStepEqualsTheDirectOps) {
    CudaBackend& be = backend();
    const QTensor table(dev(random_host({50, 64}))), wq(dev(random_host({64, 64}))), head(dev(random_host({300, 64})));
    const MediaKvFormat f = media_kv_format(4, 32);
    const QTensor k4 = be.quantize(dev(outlier_keys(700, 1, 32)), f.key);
    const QTensor v4 = be.quantize(dev(random_host({700, 1, 32})), f.value);
    struct Step {
        Tensor id, out, logits;
        std::unique_ptr<StepRecording> rec;
    };
    auto run = [&](Step& s, int32_t id) {
        if (!s.id.defined()) s.id = be.empty({1}, DType::i32);
        be.run_step(s.rec, {{s.id, id}}, [&] {
            Tensor q = be.linear(be.embed(table, s.id), wq).reshape({1, 2, 32});
            AttentionParams p;
            p.scale = 0.2f;
            s.out = be.act({1, 2, 32});
            be.copy_(s.out, q);
            be.attention_add_(s.out, q, k4, v4, p);
            s.logits = be.logits(s.out.reshape({1, 64}), head, 30.0f);
        });
    };
    Step recorded, direct;
    const int before = be.step_recordings();
    for (int32_t id : {3, 17, 49, 0}) {
        run(recorded, id);
        be.set_step_graphs(false);
        run(direct, id);
        be.set_step_graphs(true);
        const std::string what = cat("step id=", id);
        expect_equal(recorded.out, values(be.to_host(direct.out)), what);
        expect_equal(recorded.logits, values(be.to_host(direct.logits)), what + " logits");
    }
    EXPECT_EQ(be.step_recordings() - before, 1) << "later steps should replay the recording";
}

VIDI_CUDA_DTYPES(CudaMediaKv4);

}  // namespace vidi::cuda::test
