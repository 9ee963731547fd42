// A batched decoding step computes each of its rows as a one-row step would (Engine::batch:
// a batch answers as its questions one by one). So every op of the step must give a row the
// same bits whether it is alone or among up to 16: linear (every weight dtype, the fused
// q/k/v, GeGLU and SwiGLU forms, the LM head's logits), cross_attention (the media's cross-attention
// of a batch, f32, bf16, int8 and int4 K/V), and the rows' RoPE and cache writes at their own positions.
#include <gtest/gtest.h>

#include <cstring>

#include "backend/backend_test.h"
#include "core/quantize.h"

using namespace vidi;
using namespace vidi::test;

namespace {

constexpr int64_t kRows = 16;

// Row r of t (a host tensor) as its own [1, ...] tensor.
Tensor row_of(const Tensor& t, int64_t r) { return t.rows(r, r + 1).clone(); }

void expect_same_bits(const Tensor& batch_row, const Tensor& alone, const std::string& what) {
    ASSERT_EQ(batch_row.numel(), alone.numel()) << what;
    ASSERT_EQ(batch_row.dtype(), alone.dtype()) << what;
    EXPECT_EQ(std::memcmp(batch_row.raw(), alone.raw(), alone.nbytes()), 0) << what;
}

std::vector<QTensor> weights_of_every_format(Backend& be, const Shape& shape, uint32_t seed) {
    const Tensor w = random_tensor(shape, DType::bf16, seed);
    return {be.linear_weight(QTensor(w)), be.linear_weight(QTensor(random_tensor(shape, DType::f32, seed))),
            be.linear_weight(quantize(w, QuantFormat{8, static_cast<int>(shape[1])})),
            be.linear_weight(quantize(w, QuantFormat{4, 64}))};
}

}  // namespace

TEST(RowInvariance, LinearGivesEachRowItsOwnBits) {
    Backend* be = &shared_backend(BackendKind::cpu);
    const Tensor x = random_tensor({kRows, 128}, DType::f32, 1);
    for (const QTensor& w : weights_of_every_format(*be, {96, 128}, 2)) {
        for (int64_t rows : {int64_t(2), int64_t(5), kRows}) {
            const Tensor xs = x.rows(0, rows);
            const Tensor y = be->linear(xs, w);
            const Tensor logits = be->logits(xs, w, 30.0f);
            for (int64_t r = 0; r < rows; ++r) {
                expect_same_bits(row_of(y, r), be->linear(row_of(x, r), w), w.describe() + " linear row " + std::to_string(r));
                expect_same_bits(row_of(logits, r), be->logits(row_of(x, r), w, 30.0f), "logits row " + std::to_string(r));
            }
        }
    }
}

TEST(RowInvariance, FusedProjectionsGiveEachRowItsOwnBits) {
    Backend* be = &shared_backend(BackendKind::cpu);
    const Tensor x = random_tensor({kRows, 128}, DType::f32, 3);
    auto q = weights_of_every_format(*be, {64, 128}, 4), k = weights_of_every_format(*be, {32, 128}, 5),
         gate = weights_of_every_format(*be, {80, 128}, 6), up = weights_of_every_format(*be, {80, 128}, 7);
    for (size_t f = 0; f < q.size(); ++f) {
        Tensor yq = be->empty({kRows, 64}, be->act_dtype()), yk = be->empty({kRows, 32}, be->act_dtype());
        be->linear_into_({&yq, &yk}, x, {&q[f], &k[f]});
        const Tensor g = be->linear_glu(x, gate[f], up[f], Glu::gelu_tanh);
        const Tensor sw = be->linear_glu(x, gate[f], up[f], Glu::silu);  // Vidi-7B's SwiGLU
        for (int64_t r = 0; r < kRows; ++r) {
            Tensor q1 = be->empty({1, 64}, be->act_dtype()), k1 = be->empty({1, 32}, be->act_dtype());
            be->linear_into_({&q1, &k1}, row_of(x, r), {&q[f], &k[f]});
            expect_same_bits(row_of(yq, r), q1, "q row " + std::to_string(r));
            expect_same_bits(row_of(yk, r), k1, "k row " + std::to_string(r));
            expect_same_bits(row_of(g, r), be->linear_glu(row_of(x, r), gate[f], up[f], Glu::gelu_tanh),
                             "geglu row " + std::to_string(r));
            expect_same_bits(row_of(sw, r), be->linear_glu(row_of(x, r), gate[f], up[f], Glu::silu),
                             "swiglu row " + std::to_string(r));
        }
    }
}

TEST(RowInvariance, CrossAttentionGivesEachQueryItsOwnBits) {
    Backend* be = &shared_backend(BackendKind::cpu);
    AttentionParams p;
    p.scale = 0.125f;
    p.softcap = 50.0f;
    const Tensor q = random_tensor({kRows, 8, 32}, DType::f32, 8);
    const Tensor k32 = random_tensor({300, 4, 32}, DType::f32, 9), v32 = random_tensor({300, 4, 32}, DType::f32, 10);
    const std::vector<std::pair<QTensor, QTensor>> kvs = {
        {QTensor(k32), QTensor(v32)},
        {QTensor(random_tensor({300, 4, 32}, DType::bf16, 9)), QTensor(random_tensor({300, 4, 32}, DType::bf16, 10))},
        {quantize(k32, QuantFormat{8, 32}), quantize(v32, QuantFormat{8, 32})},
        {quantize(k32, media_kv_format(4, 32).key), quantize(v32, media_kv_format(4, 32).value)},  // --media-kv int4
    };
    const Tensor base = random_tensor({kRows, 8, 32}, DType::f32, 11);
    for (const auto& [k, v] : kvs) {
        const Tensor out = be->cross_attention(q, k, v, p);
        Tensor sum = base.clone();
        be->cross_attention_add_(sum, q, k, v, p);
        for (int64_t r = 0; r < kRows; ++r) {
            expect_same_bits(row_of(out, r), be->cross_attention(row_of(q, r), k, v, p), k.describe() + " row " + std::to_string(r));
            Tensor one = row_of(base, r);
            be->cross_attention_add_(one, row_of(q, r), k, v, p);
            expect_same_bits(row_of(sum, r), one, "add, row " + std::to_string(r));
        }
    }
    AttentionParams causal = p;
    causal.causal = true;
    EXPECT_THROW(be->cross_attention(q, kvs[0].first, kvs[0].second, causal), Error);
}

TEST(RowInvariance, RopeAndCacheRowsIsEachRowAlone) {
    Backend* be = &shared_backend(BackendKind::cpu);
    const std::vector<int32_t> positions = {0, 7, 39, 12};
    const int64_t B = static_cast<int64_t>(positions.size()), cap = 40;
    const Tensor q = random_tensor({B, 4, 32}, DType::f32, 12), k = random_tensor({B, 2, 32}, DType::f32, 13);
    const Tensor v = random_tensor({B, 2, 32}, DType::f32, 14), cache = random_tensor({cap, 2, 32}, DType::f32, 15);
    std::vector<Tensor> kc, vc;
    std::vector<Tensor*> kp, vp;
    for (int64_t b = 0; b < B; ++b) {
        kc.push_back(cache.clone());
        vc.push_back(cache.clone());
    }
    for (int64_t b = 0; b < B; ++b) {
        kp.push_back(&kc[b]);
        vp.push_back(&vc[b]);
    }
    Tensor qb = q.clone(), kb = k.clone();
    be->rope_and_cache_kv_rows_(qb, kb, v, kp, vp, Tensor::from_vector(positions), 10000.0);
    for (int64_t b = 0; b < B; ++b) {
        Tensor q1 = row_of(q, b), k1 = row_of(k, b), kc1 = cache.clone(), vc1 = cache.clone();
        be->rope_and_cache_kv_(q1, k1, row_of(v, b), kc1, vc1, Tensor::from_vector(std::vector<int32_t>{positions[b]}),
                               10000.0);
        expect_same_bits(row_of(qb, b), q1, "q row " + std::to_string(b));
        expect_same_bits(kc[b], kc1, "k cache " + std::to_string(b));
        expect_same_bits(vc[b], vc1, "v cache " + std::to_string(b));
    }
}
