// attention(), attention_batch(), rope_(), rope_and_cache_kv_() and repeat_kv() against
// double references (reference.h): masks and windows exhaustively on small sizes; the shapes
// a GPU sends down its other paths (split-K over many keys, several query blocks, head dims off
// the vector width, tensor-core and batched-GEMM batches); a position given as a tensor (a
// recorded decoding step's) against the same position given as a number.
#include <cmath>
#include <limits>

#include "backend/backend_test.h"

using namespace vidi;
using namespace vidi::test;

namespace {

struct Dims {
    int64_t Tq, Tk;
    int H, KV, hd;
};

std::string describe(const Dims& d, const AttentionParams& p) {
    return cat("Tq=", d.Tq, " Tk=", d.Tk, " H=", d.H, " KV=", d.KV, " hd=", d.hd, " causal=", p.causal,
               " window=", p.window, " q_pos0=", p.q_pos0, " softcap=", p.softcap);
}

class Attention : public BackendTest {
protected:
    // One case with random q, k in [-range, range) and v in [-1, 1); returns the relative error.
    double check(const Dims& d, const AttentionParams& p, float range = 1.0f, double f32_tol = 1e-5) const {
        const Tensor q = random_host({d.Tq, d.H, d.hd}, -range, range);
        const Tensor k = random_host({d.Tk, d.KV, d.hd}, -range, range);
        const Tensor v = random_host({d.Tk, d.KV, d.hd});
        const Tensor out = be().attention(dev(q), dev(k), dev(v), p);
        EXPECT_EQ(out.shape(), (Shape{d.Tq, d.H, d.hd}));
        return expect_close(out, attention_ref(q, k, v, p), tol(f32_tol), describe(d, p));
    }
};

TEST_P(Attention, MasksWindowsAndOffsetsExhaustively) {
    const int H = 4, hd = 8;
    for (int KV : {1, 2, 4})
        for (int64_t Tq : {1, 3, 5, 17})  // 17 rows and more take the CPU's blocked kernel
            for (int64_t Tk = 1; Tk <= 9; ++Tk)
                for (int64_t q_pos0 : {0, 2, 4, 8})
                    for (int window : {0, 1, 3})
                        for (bool causal : {false, true})
                            for (float cap : {0.0f, 2.0f}) {
                                AttentionParams p;
                                p.scale = 0.35f;
                                p.softcap = cap;
                                p.causal = causal;
                                p.window = window;
                                p.q_pos0 = q_pos0;
                                check({Tq, Tk, H, KV, hd}, p, 2.0f);
                                if (HasFailure()) return;  // the first failure is enough
                            }
}

TEST_P(Attention, EveryMaskCombinationAtTheModelsHeadDims) {
    const int64_t Tk = 45;
    int cases = 0;
    for (int hd : {64, 72, 128, 256})
        for (auto [H, KV] : {std::pair<int, int>{2, 2}, {4, 2}, {3, 1}})
            for (int64_t Tq : {1, 5, 19})
                for (int64_t q_pos0 : {int64_t(0), int64_t(7), Tk - Tq})
                    for (bool causal : {false, true})
                        for (int window : {0, 1, 4, 30})
                            for (float softcap : {0.0f, 3.0f}) {
                                AttentionParams p;
                                p.scale = 1.0f / std::sqrt(float(hd)) * 4.0f;  // peaked softmax
                                p.softcap = softcap;
                                p.causal = causal;
                                p.window = window;
                                p.q_pos0 = q_pos0;
                                check({Tq, Tk, H, KV, hd}, p);
                                ++cases;
                                if (HasFailure()) return;
                            }
    EXPECT_EQ(cases, 4 * 3 * 3 * 3 * 2 * 4 * 2);
}

TEST_P(Attention, SlidingWindowIsInclusive) {
    // One query at position 5 with window 2 sees keys 3, 4, 5 only: give key j the value j.
    const int64_t Tk = 8;
    Tensor v = Tensor::empty({Tk, 1, 1}, DType::f32);
    for (int64_t j = 0; j < Tk; ++j) v.data<float>()[j] = static_cast<float>(j);
    AttentionParams p;
    p.causal = true;
    p.window = 2;
    p.q_pos0 = 5;
    const Tensor zeros_q = dev(Tensor::zeros({1, 1, 1}, DType::f32)), zeros_k = dev(Tensor::zeros({Tk, 1, 1}, DType::f32));
    const Tensor out = host(be().attention(zeros_q, zeros_k, dev(v), p));  // all scores equal
    EXPECT_FLOAT_EQ(out.data<float>()[0], 4.0f);  // the mean of 3, 4, 5
}

TEST_P(Attention, ManyKeysSplitOverTheDevice) {
    // Few queries over many keys: split-K on a GPU, with and without a causal window.
    for (int64_t Tk : {1000, 5003})
        for (int64_t Tq : {1, 3})
            for (int mask = 0; mask < 3; ++mask) {
                AttentionParams p;
                p.scale = 0.25f;
                p.softcap = 50.0f;
                p.causal = mask > 0;
                p.window = mask == 2 ? 700 : 0;
                p.q_pos0 = mask > 0 ? Tk - Tq : 0;
                check({Tq, Tk, 8, 2, 128}, p, 2.0f);
            }
    AttentionParams cross;
    cross.scale = 0.25f;
    cross.softcap = 50.0f;
    check({2, 40000, 4, 2, 16}, cross, 3.0f);
}

TEST_P(Attention, DecodeAtEveryHeadDim) {
    for (int hd : {64, 72, 128, 256}) {
        AttentionParams p;
        p.scale = 1.0f / std::sqrt(float(hd));
        p.causal = true;
        p.q_pos0 = 2999;
        check({1, 3000, 16, 8, hd}, p, 2.0f);
    }
}

TEST_P(Attention, PrefillAcrossQueryBlocksAndKeyChunks) {
    AttentionParams p;
    p.scale = 1.0f / 16.0f;
    p.softcap = 50.0f;
    p.causal = true;
    p.window = 64;
    check({300, 300, 4, 2, 256}, p, 2.0f);
    p.window = 0;
    check({257, 257, 8, 8, 64}, p, 2.0f);
    AttentionParams bidir;  // SigLIP-like: no mask
    bidir.scale = 1.0f / std::sqrt(72.0f);
    check({729, 729, 2, 2, 72}, bidir, 2.0f);
    // More than one block of 256 queries and several chunks of 2048 keys, with the causal and
    // window limits falling inside chunks (the CPU's blocked kernel).
    for (int window : {0, 3000, 100}) {
        AttentionParams w;
        w.scale = 0.5f;
        w.softcap = 3.0f;
        w.causal = true;
        w.window = window;
        w.q_pos0 = 4600;
        check({300, 5000, 4, 2, 8}, w, 2.0f);
    }
    AttentionParams full;  // no mask at all
    full.scale = 0.3f;
    check({300, 5000, 4, 2, 8}, full, 2.0f);
}

TEST_P(Attention, HeadDimsOffTheVectorWidth) {
    // The tiny golden towers have head dims 12 (SigLIP) and 10 (Whisper); a GPU pads them.
    AttentionParams bidir;
    for (int hd : {10, 12, 30}) {
        bidir.scale = 1.0f / std::sqrt(float(hd));
        check({37, 37, 4, 4, hd}, bidir, 2.0f);
    }
    AttentionParams causal;
    causal.scale = 0.2f;
    causal.causal = true;
    causal.window = 8;
    check({20, 20, 4, 2, 12}, causal, 2.0f);
}

TEST_P(Attention, LargeCrossAttention) {
    AttentionParams p;
    p.scale = 1.0f / 16.0f;
    p.softcap = 50.0f;
    check({8, 50000, 16, 8, 256}, p, 2.0f);
    check({40, 6000, 16, 8, 256}, p, 2.0f);  // a prompt's rows over the media
}

TEST_P(Attention, SixteenBitKeyValuesGiveTheResultOfTheirValues) {
    // A 16-bit K/V cache (bf16 on the CPU, the activation dtype on a GPU) against the
    // reference of its values.
    const DType kv = gpu() ? act() : DType::bf16;
    const Tensor q = random_host({2, 4, 16}, -3.0f, 3.0f);
    const Tensor k = random_tensor({4000, 2, 16}, DType::bf16, 2, -3, 3), v = random_tensor({4000, 2, 16}, DType::bf16, 3);
    Tensor kb = be().empty(k.shape(), kv), vb = be().empty(v.shape(), kv);
    be().copy_(kb, dev(k));
    be().copy_(vb, dev(v));
    AttentionParams p;
    p.scale = 0.25f;
    p.softcap = 50.0f;
    expect_close(be().attention(dev(q), kb, vb, p), attention_ref(q, host(kb), host(vb), p), tol(1e-5),
                 cat(dtype_name(kv), " K/V"));
}

TEST_P(Attention, NoKeysGiveZeros) {
    AttentionParams p;
    const Tensor q = dev(random_host({3, 2, 64}));
    const Tensor k = be().act({0, 2, 64});
    expect_equal(be().attention(q, k, k, p), std::vector<double>(3 * 2 * 64, 0.0), "attention with Tk=0");
}

TEST_P(Attention, DenseBatchOfSequences) {
    // Many query rows without a mask: a GPU's tensor-core kernel (head dims 64, 72, 128) or
    // batched GEMMs around a row softmax (others, here 32).
    for (int hd : {32, 64, 72, 128})
        for (float softcap : {0.0f, 5.0f})
            // 2, 3, 1 and 4 key tiles; 300 query rows span blocks of every configuration.
            for (auto [Tq, Tk] : {std::pair<int64_t, int64_t>{100, 100}, {70, 131}, {64, 40}, {300, 200}}) {
                const int64_t n = 3;
                const Dims d{Tq, Tk, 4, 2, hd};
                AttentionParams p;
                p.scale = 2.0f / std::sqrt(float(hd));
                p.softcap = softcap;
                const Tensor q = random_host({n, Tq, d.H, hd}, -2.0f, 2.0f);
                const Tensor k = random_host({n, Tk, d.KV, hd}, -2.0f, 2.0f);
                const Tensor v = random_host({n, Tk, d.KV, hd});
                const Tensor out = be().attention_batch(dev(q), dev(k), dev(v), p);
                ASSERT_EQ(out.shape(), (Shape{n, Tq, d.H, hd}));
                for (int64_t i = 0; i < n; ++i)
                    expect_close(out.row(i), attention_ref(q.row(i), k.row(i), v.row(i), p), tol(1e-5),
                                 cat("sequence ", i, " of ", describe(d, p)));
            }
}

TEST_P(Attention, DenseChunksOfProblems) {
    // More (sequence, head) problems than one chunk of scores holds (kAttentionScoreBytes):
    // sampled rows of every sequence against the reference.
    const int64_t n = 3, T = 2048;
    const Dims one{1, T, 8, 8, 32};
    ASSERT_GT(n * one.H * T * T * int64_t(sizeof(float)), int64_t(kAttentionScoreBytes));
    AttentionParams p;
    p.scale = 0.125f;
    const Tensor q = random_host({n, T, one.H, one.hd}, -2.0f, 2.0f);
    const Tensor k = random_host({n, T, one.KV, one.hd}, -2.0f, 2.0f);
    const Tensor v = random_host({n, T, one.KV, one.hd});
    const Tensor out = be().attention_batch(dev(q), dev(k), dev(v), p);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t row : {int64_t(0), int64_t(777), T - 1})
            expect_close(out.row(i).rows(row, row + 1), attention_ref(q.row(i).rows(row, row + 1), k.row(i), v.row(i), p),
                         tol(1e-5), cat("sequence ", i, ", query ", row));
}

TEST_P(Attention, BadShapesAreErrors) {
    AttentionParams p;
    const Tensor q = dev(random_host({2, 4, 64})), k = dev(random_host({5, 3, 64}));
    EXPECT_THROW(be().attention(q, k, k, p), Error);  // 4 heads, 3 KV heads
    const Tensor q3 = dev(random_host({1, 3, 8})), k2 = dev(random_host({2, 2, 8}));
    EXPECT_THROW(be().attention(q3, k2, k2, p), Error);  // 3 heads, 2 KV heads
    const Tensor q4 = dev(random_host({2, 64, 4, 64})), k4 = dev(random_host({3, 64, 4, 64}));
    EXPECT_THROW(be().attention_batch(q4, k4, k4, p), Error);  // 2 query sequences, 3 key sequences
}

TEST_P(Attention, StepPositionSeesTheCacheUpToIt) {
    // A whole cache whose rows past the position are unfilled (NaN here): a position given as
    // a tensor reads only the rows it sees, as a fixed q_pos0 over those rows does.
    const int64_t Tk = 12, H = 4, KV = 2, hd = 8;
    for (int64_t Tq : {1, 2})
        for (int64_t pos : {0, 4, 10})
            for (int window : {0, 3}) {
                const Tensor q = random_host({Tq, H, hd}, -2.0f, 2.0f);
                Tensor k = random_host({Tk, KV, hd}, -2.0f, 2.0f), v = random_host({Tk, KV, hd});
                for (Tensor* t : {&k, &v})
                    for (int64_t i = (pos + Tq) * KV * hd; i < t->numel(); ++i)
                        t->data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
                AttentionParams fixed;
                fixed.scale = 0.35f;
                fixed.softcap = 2.0f;
                fixed.causal = true;
                fixed.window = window;
                fixed.q_pos0 = pos;
                AttentionParams stepped = fixed;
                stepped.q_pos0 = 0;
                stepped.step_pos = dev(Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(pos)}));
                const auto ref = attention_ref(q, k.rows(0, pos + Tq), v.rows(0, pos + Tq), fixed);
                expect_close(be().attention(dev(q), dev(k), dev(v), stepped), ref, tol(1e-5),
                             cat("Tq ", Tq, " pos ", pos, " window ", window));
            }
    AttentionParams not_causal;
    not_causal.step_pos = dev(Tensor::from_vector(std::vector<int32_t>{0}));
    const Tensor q = dev(random_host({1, 2, 8})), k = dev(random_host({4, 2, 8}));
    EXPECT_THROW(be().attention(q, k, k, not_causal), Error);
}

TEST_P(Attention, AttentionAddEqualsAddOfAttention) {
    AttentionParams p;
    p.scale = 0.1f;
    p.softcap = 30.0f;
    for (int64_t Tq : {1, 2, 40})          // few rows (decode), and the tiled kernel
        for (int64_t Tk : {40, 5000}) {    // one slice, and split-K with the merge kernel
            const Tensor q = dev(random_host({Tq, 4, 64})), k = dev(random_host({Tk, 2, 64}, -2.0f, 2.0f)),
                         v = dev(random_host({Tk, 2, 64}));
            Tensor fused = dev(random_host({Tq, 4, 64}));
            Tensor apart = be().act(fused.shape());
            be().copy_(apart, fused);
            be().attention_add_(fused, q, QTensor(k), QTensor(v), p);
            be().add_(apart, be().attention(q, QTensor(k), QTensor(v), p));
            expect_equal(fused, held(apart), cat("attention_add_ Tq=", Tq, " Tk=", Tk));
        }
}

// A batched step's text attention: each row over its own cache (lengths differ), at its own
// position, gives the row's attention_add_() alone, bit for bit; malformed calls are errors.
TEST_P(Attention, StepAttentionOfRowsIsEachRowAlone) {
    AttentionParams p;
    p.scale = 0.1f;
    p.softcap = 30.0f;
    p.causal = true;
    const std::vector<int64_t> caps = {12, 40, 7};
    const std::vector<int32_t> positions = {11, 3, 6};
    const int64_t B = 3;
    const Tensor q = dev(random_host({B, 4, 64})), base = random_host({B, 4, 64});
    std::vector<QTensor> keys, values;
    for (int64_t cap : caps) {
        keys.emplace_back(dev(random_host({cap, 2, 64}, -2.0f, 2.0f)));
        values.emplace_back(dev(random_host({cap, 2, 64})));
    }
    Tensor out = dev(base);
    p.step_pos = dev(Tensor::from_vector(positions));
    be().step_attention_add_(out, q, keys, values, p);
    for (int64_t b = 0; b < B; ++b) {
        AttentionParams one = p;
        one.step_pos = dev(Tensor::from_vector(std::vector<int32_t>{positions[size_t(b)]}));
        Tensor alone = dev(base.rows(b, b + 1).clone());
        be().attention_add_(alone, q.rows(b, b + 1), keys[size_t(b)], values[size_t(b)], one);
        expect_equal(out.rows(b, b + 1), held(alone), cat("row ", b));
    }
    const std::vector<QTensor> two_keys(keys.begin(), keys.begin() + 2);
    EXPECT_THROW(be().step_attention_add_(out, q, two_keys, values, p), Error);  // a cache short
    AttentionParams no_pos = p;
    no_pos.step_pos = Tensor();
    EXPECT_THROW(be().step_attention_add_(out, q, keys, values, no_pos), Error);
}

// cross_attention (the decoder's media attention, a batch's steps and a prompt's queries): on
// CUDA tensor cores for 16-bit K/V at head dims 32, 64, 128 and 256 (the few-row kernel a few
// queries at a time otherwise: 72), from one row to several blocks of 64, from one key to the
// split-K path, with and without the soft-cap, writing or adding into an output; as a prompt's
// rows and as a decoding step's (each its own kernel layout on CUDA).
TEST_P(Attention, CrossAttentionMatchesReference) {
    int cases = 0;
    for (int hd : {32, 64, 72, 128, 256})
        for (auto [Tq, Tk] : {std::pair<int64_t, int64_t>{1, 1}, {1, 33}, {3, 2000}, {40, 700}, {130, 257}, {9, 20000}})
            for (float softcap : {0.0f, 50.0f}) {
                const Dims d{Tq, Tk, 8, 4, hd};
                AttentionParams p;
                p.scale = 2.0f / std::sqrt(float(hd));
                p.softcap = softcap;
                p.step_rows = softcap > 0.0f;  // each shape once as a prompt's rows, once as a step's
                const Tensor q = random_host({Tq, 8, hd}), k = random_host({Tk, 4, hd}), v = random_host({Tk, 4, hd});
                const Tensor qd = dev(q);
                const QTensor kd(dev(k)), vd(dev(v));
                const std::vector<double> ref = attention_ref(q, k, v, p);
                expect_close(be().cross_attention(qd, kd, vd, p), ref, tol(1e-5), "cross " + describe(d, p));
                const Tensor base = random_host({Tq, 8, hd});
                Tensor sum = dev(base);
                be().cross_attention_add_(sum, qd, kd, vd, p);
                std::vector<double> want = values(base);
                for (size_t i = 0; i < want.size(); ++i) want[i] += ref[i];
                expect_close(sum, want, tol(1e-5), "cross add " + describe(d, p));
                ++cases;
                if (::testing::Test::HasFailure()) return;
            }
    EXPECT_EQ(cases, 5 * 6 * 2);
    AttentionParams causal;
    causal.causal = true;
    const Tensor q = dev(random_host({2, 8, 64})), kv = dev(random_host({10, 4, 64}));
    EXPECT_THROW(be().cross_attention(q, QTensor(kv), QTensor(kv), causal), Error);
}

class Rope : public BackendTest {};

TEST_P(Rope, RotateHalfAtOffsets) {
    struct Case {
        int64_t T, H, hd, pos0;
        double theta;
    };
    for (const Case c : {Case{13, 3, 64, 0, 10000.0}, Case{5, 2, 256, 5000, 10000.0}, Case{1, 16, 256, 77, 1e6},
                         Case{9, 4, 72, 3, 10000.0}, Case{6, 3, 16, 7, 10000.0}}) {
        const Tensor h = random_host({c.T, c.H, c.hd});
        Tensor x = dev(h);
        be().rope_(x, c.pos0, c.theta);
        expect_close(x, rope_ref(values(h), c.T, c.H, c.hd, c.pos0, c.theta), tol(1e-6),
                     cat("rope T=", c.T, " hd=", c.hd, " pos0=", c.pos0));
    }
}

TEST_P(Rope, RopeAndCacheKvEqualsRopesAndRowCopies) {
    constexpr int64_t kRows = 20, kGuard = 3;  // cache rows, then rows that must stay untouched
    for (auto [T, pos] : {std::pair<int64_t, int32_t>{1, 0}, {1, 7}, {5, 7}, {5, 15}}) {
        const Tensor qh = random_host({T, 8, 256}), kh = random_host({T, 4, 256}), vh = random_host({T, 4, 256});
        const Tensor kc_h = random_host({kRows + kGuard, 4, 256}), vc_h = random_host({kRows + kGuard, 4, 256});
        Tensor q = dev(qh), k = dev(kh), v = dev(vh), kc_all = dev(kc_h), vc_all = dev(vc_h);
        Tensor kc = kc_all.rows(0, kRows), vc = vc_all.rows(0, kRows);
        be().rope_and_cache_kv_(q, k, v, kc, vc, dev(Tensor::from_vector(std::vector<int32_t>{pos})), 10000.0);

        Tensor q2 = dev(qh), k2 = dev(kh);
        be().rope_(q2, pos, 10000.0);
        be().rope_(k2, pos, 10000.0);
        expect_equal(q, held(q2), cat("q T=", T, " pos=", pos));
        // Rows pos.. of the caches hold the rotated k and v; the rest (the guard rows past the
        // cache included) keep what they held.
        std::vector<double> k_ref = values(kc_h), v_ref = values(vc_h);
        const std::vector<double> k_rot = held(k2), v_new = held(v);
        const int64_t row = 4 * 256;
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < row; ++i) {
                k_ref[(pos + t) * row + i] = k_rot[t * row + i];
                v_ref[(pos + t) * row + i] = v_new[t * row + i];
            }
        expect_equal(kc_all, k_ref, cat("k cache T=", T, " pos=", pos));
        expect_equal(vc_all, v_ref, cat("v cache T=", T, " pos=", pos));
    }
    Tensor q = dev(random_host({2, 8, 64})), k = dev(random_host({3, 4, 64})), v = dev(random_host({3, 4, 64}));
    Tensor kc = dev(random_host({8, 4, 64})), vc = dev(random_host({8, 4, 64}));
    const Tensor pos0 = dev(Tensor::from_vector(std::vector<int32_t>{0}));
    EXPECT_THROW(be().rope_and_cache_kv_(q, k, v, kc, vc, pos0, 10000.0), Error);  // q and k differ in positions
}

TEST(RopeOnTheCpu, RopeAndCacheKvChecksThePositionItReads) {
    // The CPU reads the position from host memory before it writes: a position past the cache
    // or of another dtype is an error (a GPU reads it as the op runs: tests/cuda).
    Backend& be = shared_backend(BackendKind::cpu);
    Tensor q = random_host({3, 4, 16}), k = random_host({3, 2, 16}), kc = random_host({10, 2, 16});
    EXPECT_THROW(be.rope_and_cache_kv_(q, k, k, kc, kc, Tensor::from_vector(std::vector<int32_t>{8}), 1e4), Error)
        << "rows 8..10 are past the cache";
    EXPECT_THROW(be.rope_and_cache_kv_(q, k, k, kc, kc, Tensor::from_vector(std::vector<int64_t>{0}), 1e4), Error)
        << "the position must be i32";
}

TEST_P(Attention, RepeatKv) {
    const int64_t T = 5, KV = 2, hd = 24;
    const int H = 6;
    const Tensor h = random_host({T, KV, hd});
    const std::vector<double> v = values(h);
    std::vector<double> ref;
    for (int64_t t = 0; t < T; ++t)
        for (int hh = 0; hh < H; ++hh)
            for (int64_t d = 0; d < hd; ++d) ref.push_back(v[(t * KV + hh / (H / KV)) * hd + d]);
    const Tensor out = be().repeat_kv(dev(h), H);
    EXPECT_EQ(out.shape(), (Shape{T, H, hd}));
    expect_equal(out, ref, "repeat_kv");
    EXPECT_THROW(be().repeat_kv(dev(h), 5), Error);
}

}  // namespace

VIDI_BACKEND_SUITE(Attention);
VIDI_BACKEND_SUITE(Rope);
