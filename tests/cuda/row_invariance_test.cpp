// A batched decoding step computes each of its rows as a one-row step would (Engine::batch:
// a batch answers as its questions one by one, token ids included). So every op of the step
// must give a row the same bits alone or among up to 16 rows, in either activation dtype:
// linear on the few-row GEMV (16-bit, int8, int4 weights; the q/k/v and GeGLU forms; the LM
// head's f32 logits), cross_attention over Vidi-sized media K/V (16-bit on tensor cores,
// for a batch's steps and a prompt's queries; int8 and int4 on the few-row kernel; split-K), plain and
// adding into an output, and the rows' RoPE and cache writes at their own positions.
// A batch's prompts share their linears past the GEMV (DattnDecoder::prefill_rows), so the GEMM
// too must give a prompt's rows the bits they get alone, up to kRowInvariantRows rows.

#include "backend/cuda/gemm.h"
#include "core/quantize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaRowInvariance : public CudaDtypes {};

constexpr int64_t kRows = 16;

std::vector<QTensor> weights_of_every_format(const Shape& shape) {
    const Tensor w = random_host(shape);
    return {backend().linear_weight(QTensor(w)),
            backend().linear_weight(vidi::quantize(w, {8, static_cast<int>(shape[1])})),
            backend().linear_weight(vidi::quantize(w, {4, 64}))};
}

TEST_P(CudaRowInvariance, LinearGivesEachRowItsOwnBits) {
    CudaBackend& be = backend();
    const Tensor x = dev(random_host({kRows, 512}));
    for (const QTensor& w : weights_of_every_format({384, 512})) {
        for (int64_t rows : {int64_t(2), int64_t(5), int64_t(9), kRows}) {
            const Tensor xs = x.rows(0, rows);
            const Tensor y = be.linear(xs, w), logits = be.logits(xs, w, 30.0f);
            for (int64_t r = 0; r < rows; ++r) {
                const Tensor x1 = x.rows(r, r + 1);
                const std::string what = w.describe() + ", " + std::to_string(rows) + " rows, row " + std::to_string(r);
                expect_same_bits(host_row(y, r), host_row(be.linear(x1, w), 0), "linear " + what);
                expect_same_bits(host_row(logits, r), host_row(be.logits(x1, w, 30.0f), 0), "logits " + what);
            }
        }
    }
}

TEST_P(CudaRowInvariance, PromptsSharingTheGemmGetTheirOwnBits) {
    CudaBackend& be = backend();
    EXPECT_EQ(be.linear_row_class(kRows), -1);  // the GEMV's rows: each prompt its own
    EXPECT_EQ(be.linear_row_class(kRows + 1), 0);
    EXPECT_EQ(be.linear_row_class(kRowInvariantRows), 0);
    EXPECT_EQ(be.linear_row_class(kRowInvariantRows + 1), -1);
    // Prompts of 17, 40, 123 and 700 rows as one GEMM of 880, each against its GEMM alone, with
    // Vidi1.5-9B's inner dimension (3584) and a wide output, for every weight format, and the
    // MLP's fused form (two GEMMs and the GLU past the GEMV).
    const std::vector<int64_t> prompt_rows{17, 40, 123, 700};
    int64_t total = 0;
    for (int64_t r : prompt_rows) total += r;
    const Tensor x = dev(random_host({total, 3584}));
    const auto ws = weights_of_every_format({1536, 3584});
    const auto up = weights_of_every_format({1536, 3584});
    for (size_t f = 0; f < ws.size(); ++f) {
        const Tensor y = be.linear(x, ws[f]), g = be.linear_glu(x, ws[f], up[f], Glu::gelu_tanh);
        int64_t r0 = 0;
        for (int64_t rows : prompt_rows) {
            const Tensor xp = x.rows(r0, r0 + rows);
            const std::string what = ws[f].describe() + ", rows " + std::to_string(r0) + ".." + std::to_string(r0 + rows);
            expect_same_bits(host_values(y.rows(r0, r0 + rows)), host_values(be.linear(xp, ws[f])), "linear " + what);
            expect_same_bits(host_values(g.rows(r0, r0 + rows)),
                             host_values(be.linear_glu(xp, ws[f], up[f], Glu::gelu_tanh)), "geglu " + what);
            r0 += rows;
        }
    }
}

TEST_P(CudaRowInvariance, FusedProjectionsGiveEachRowItsOwnBits) {
    CudaBackend& be = backend();
    const Tensor x = dev(random_host({kRows, 512}));
    auto q = weights_of_every_format({256, 512}), k = weights_of_every_format({128, 512});
    auto gate = weights_of_every_format({640, 512}), up = weights_of_every_format({640, 512});
    for (size_t f = 0; f < q.size(); ++f) {
        Tensor yq = be.empty({kRows, 256}, act()), yk = be.empty({kRows, 128}, act());
        be.linear_into_({&yq, &yk}, x, {&q[f], &k[f]});
        const Tensor g = be.linear_glu(x, gate[f], up[f], Glu::gelu_tanh);
        const Tensor sw = be.linear_glu(x, gate[f], up[f], Glu::silu);  // Vidi-7B's SwiGLU
        for (int64_t r = 0; r < kRows; ++r) {
            const Tensor x1 = x.rows(r, r + 1);
            Tensor q1 = be.empty({1, 256}, act()), k1 = be.empty({1, 128}, act());
            be.linear_into_({&q1, &k1}, x1, {&q[f], &k[f]});
            const std::string what = q[f].describe() + ", row " + std::to_string(r);
            expect_same_bits(host_row(yq, r), host_row(q1, 0), "q " + what);
            expect_same_bits(host_row(yk, r), host_row(k1, 0), "k " + what);
            expect_same_bits(host_row(g, r), host_row(be.linear_glu(x1, gate[f], up[f], Glu::gelu_tanh), 0),
                             "geglu " + what);
            expect_same_bits(host_row(sw, r), host_row(be.linear_glu(x1, gate[f], up[f], Glu::silu), 0),
                             "swiglu " + what);
        }
    }
}

TEST_P(CudaRowInvariance, CrossAttentionGivesEachRowItsOwnBits) {
    CudaBackend& be = backend();
    AttentionParams p;
    p.scale = 0.0625f;
    p.softcap = 50.0f;
    // Vidi1.5-9B's heads (16 over 8 KV heads of 256) over enough keys for the split-K path; a
    // batch of 16 steps and a prompt of 100 queries (two blocks of 64 rows) on the tensor-core
    // kernel, and int8 and int4 K/V (--media-kv int4) on the few-row kernel.
    const int64_t Tk = 20000;
    const Tensor kh = random_host({Tk, 8, 256}), vh = random_host({Tk, 8, 256});
    const std::vector<std::pair<QTensor, QTensor>> kvs = {
        {QTensor(dev(kh)), QTensor(dev(vh))},
        {be.quantize(dev(kh), QuantFormat{8, 256}), be.quantize(dev(vh), QuantFormat{8, 256})},
        {be.quantize(dev(kh), media_kv_format(4, 256).key), be.quantize(dev(vh), media_kv_format(4, 256).value)},
    };
    const Tensor q = dev(random_host({100, 16, 256})), base = dev(random_host({100, 16, 256}));
    for (bool step : {false, true})  // a prompt's rows, a decoding step's (each its own kernel layout)
    for (const auto& [k, v] : kvs) {
        p.step_rows = step;
        for (int64_t rows : {int64_t(3), int64_t(4), int64_t(7), int64_t(9), kRows, int64_t(100)}) {
            if ((k.quantized() || step) && rows > kRows) continue;
            const Tensor qs = q.rows(0, rows);
            const Tensor out = be.cross_attention(qs, k, v, p);
            Tensor sum = be.empty({rows, 16, 256}, act());
            be.copy_(sum, base.rows(0, rows));
            be.cross_attention_add_(sum, qs, k, v, p);
            for (int64_t r = 0; r < rows; r += rows > kRows ? 7 : 1) {
                const Tensor q1 = q.rows(r, r + 1);
                const std::string what = k.describe() + (step ? ", step" : ", prompt") + ", " + std::to_string(rows) +
                                         " rows, row " + std::to_string(r);
                expect_same_bits(host_row(out, r), host_row(be.cross_attention(q1, k, v, p), 0), what);
                Tensor one = be.empty({1, 16, 256}, act());
                be.copy_(one, base.rows(r, r + 1));
                be.cross_attention_add_(one, q1, k, v, p);
                expect_same_bits(host_row(sum, r), host_row(one, 0), "add, " + what);
            }
        }
    }
}

TEST_P(CudaRowInvariance, RopeAndCacheRowsIsEachRowAlone) {
    CudaBackend& be = backend();
    const std::vector<int32_t> positions = {0, 7, 39, 12, 3};
    const int64_t B = static_cast<int64_t>(positions.size()), cap = 40;
    const Tensor q = random_host({B, 16, 256}), k = random_host({B, 8, 256}), v = random_host({B, 8, 256});
    const Tensor cache = random_host({cap, 8, 256});
    auto fresh = [&](const Tensor& host) { return dev(host); };
    std::vector<Tensor> kc, vc, kc1, vc1;
    std::vector<Tensor*> kp, vp;
    for (int64_t b = 0; b < B; ++b) {
        kc.push_back(fresh(cache));
        vc.push_back(fresh(cache));
        kc1.push_back(fresh(cache));
        vc1.push_back(fresh(cache));
    }
    for (int64_t b = 0; b < B; ++b) {
        kp.push_back(&kc[b]);
        vp.push_back(&vc[b]);
    }
    Tensor qb = dev(q), kb = dev(k);
    const Tensor vb = dev(v), pos = be.upload(Tensor::from_vector(positions));
    be.rope_and_cache_kv_rows_(qb, kb, vb, kp, vp, pos, 10000.0);
    for (int64_t b = 0; b < B; ++b) {
        Tensor q1 = dev(q.rows(b, b + 1).clone()), k1 = dev(k.rows(b, b + 1).clone());
        const Tensor v1 = dev(v.rows(b, b + 1).clone());
        const Tensor p1 = be.upload(Tensor::from_vector(std::vector<int32_t>{positions[b]}));
        be.rope_and_cache_kv_(q1, k1, v1, kc1[b], vc1[b], p1, 10000.0);
        const std::string what = "row " + std::to_string(b) + " at " + std::to_string(positions[b]);
        expect_same_bits(host_row(qb, b), host_row(q1, 0), "q " + what);
        for (int64_t r = 0; r < cap; ++r) {
            expect_same_bits(host_row(kc[b], r), host_row(kc1[b], r), "k cache " + what);
            expect_same_bits(host_row(vc[b], r), host_row(vc1[b], r), "v cache " + what);
        }
    }
}

TEST_P(CudaRowInvariance, StepTextAttentionOfTheRowsIsEachRowAlone) {
    // A batched step's text attention, each row over its own cache (capacities differ) at its
    // own position: one launch while every row is a one-slice problem, a launch a row once a
    // cache is long enough to split its keys; either way each row's bits as alone.
    CudaBackend& be = backend();
    AttentionParams p;
    p.scale = 0.0625f;
    p.softcap = 50.0f;
    p.causal = true;
    for (bool long_cache : {false, true}) {
        const std::vector<int64_t> caps = {40, 97, 64, 12, long_cache ? 9000 : 33};
        const std::vector<int32_t> positions = {0, 96, 31, 11, long_cache ? 8500 : 20};
        const int64_t B = static_cast<int64_t>(caps.size());
        const Tensor q = dev(random_host({B, 16, 256})), base = dev(random_host({B, 16, 256}));
        std::vector<QTensor> keys, values;
        for (int64_t cap : caps) {
            keys.emplace_back(dev(random_host({cap, 8, 256})));
            values.emplace_back(dev(random_host({cap, 8, 256})));
        }
        Tensor out = be.empty({B, 16, 256}, act());
        be.copy_(out, base);
        p.step_pos = be.upload(Tensor::from_vector(positions));
        be.step_attention_add_(out, q, keys, values, p);
        for (int64_t b = 0; b < B; ++b) {
            AttentionParams one = p;
            one.step_pos = be.upload(Tensor::from_vector(std::vector<int32_t>{positions[size_t(b)]}));
            Tensor alone = be.empty({1, 16, 256}, act());
            be.copy_(alone, base.rows(b, b + 1));
            be.attention_add_(alone, q.rows(b, b + 1), keys[size_t(b)], values[size_t(b)], one);
            expect_same_bits(host_row(out, b), host_row(alone, 0),
                             "row " + std::to_string(b) + (long_cache ? ", a long cache among the rows" : ""));
        }
    }
}

VIDI_CUDA_DTYPES(CudaRowInvariance);

}  // namespace
}  // namespace vidi::cuda::test
