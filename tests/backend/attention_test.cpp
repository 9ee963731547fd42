// attention(), rope_(), rope_and_cache_kv_() and repeat_kv() against naive double references;
// masks and windows are checked exhaustively on small sizes, and a position given as a tensor
// (a recorded decoding step's) against the same position given as a number.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backend/ref_util.h"

using namespace vidi;
using namespace vidi::test;

TEST(Attention, MasksWindowsAndOffsetsExhaustively) {
    auto be = test_backend();
    const int64_t H = 4, hd = 8;
    int cases = 0;
    for (int64_t KV : {1, 2, 4})
        for (int64_t Tq : {1, 3, 5, 17})  // 17 rows and more take the blocked kernel
            for (int64_t Tk = 1; Tk <= 9; ++Tk)
                for (int64_t q_pos0 : {0, 2, 4, 8})
                    for (int window : {0, 1, 3})
                        for (bool causal : {false, true})
                            for (float cap : {0.0f, 2.0f}) {
                                const uint32_t seed = static_cast<uint32_t>(cases++);
                                Tensor q = random_tensor({Tq, H, hd}, DType::f32, 3 * seed, -2, 2);
                                Tensor k = random_tensor({Tk, KV, hd}, DType::f32, 3 * seed + 1, -2, 2);
                                Tensor v = random_tensor({Tk, KV, hd}, DType::f32, 3 * seed + 2);
                                AttentionParams p;
                                p.scale = 0.35f;
                                p.softcap = cap;
                                p.causal = causal;
                                p.window = window;
                                p.q_pos0 = q_pos0;
                                const double e = rel_err(be->attention(q, k, v, p), attention_ref(q, k, v, p));
                                ASSERT_LT(e, 1e-5) << "KV " << KV << " Tq " << Tq << " Tk " << Tk << " q_pos0 "
                                                   << q_pos0 << " window " << window << " causal " << causal
                                                   << " cap " << cap;
                            }
}

TEST(Attention, SlidingWindowIsInclusive) {
    // One query at position 5 with window 2 sees keys 3, 4, 5 only: give key j the value j.
    auto be = test_backend();
    const int64_t Tk = 8;
    Tensor q = Tensor::zeros({1, 1, 1}, DType::f32);  // all scores equal
    Tensor k = Tensor::zeros({Tk, 1, 1}, DType::f32);
    Tensor v = Tensor::empty({Tk, 1, 1}, DType::f32);
    for (int64_t j = 0; j < Tk; ++j) v.data<float>()[j] = static_cast<float>(j);
    AttentionParams p;
    p.causal = true;
    p.window = 2;
    p.q_pos0 = 5;
    EXPECT_FLOAT_EQ(be->attention(q, k, v, p).data<float>()[0], 4.0f);  // mean of 3, 4, 5
}

TEST(Attention, ManyKeysFewQueriesAndBf16Cache) {
    auto be = test_backend();
    const int64_t Tk = 40000, H = 4, KV = 2, hd = 16;
    Tensor q = random_tensor({2, H, hd}, DType::f32, 1, -3, 3);
    Tensor k = random_tensor({Tk, KV, hd}, DType::f32, 2, -3, 3);
    Tensor v = random_tensor({Tk, KV, hd}, DType::f32, 3);
    AttentionParams p;
    p.scale = 0.25f;
    p.softcap = 50.0f;
    EXPECT_LT(rel_err(be->attention(q, k, v, p), attention_ref(q, k, v, p)), 1e-5);
    // A bf16 K/V cache gives the result of its (rounded) values.
    Tensor kb = Tensor::empty(k.shape(), DType::bf16), vb = Tensor::empty(v.shape(), DType::bf16);
    be->copy_(kb, k);
    be->copy_(vb, v);
    EXPECT_LT(rel_err(be->attention(q, kb, vb, p), attention_ref(q, kb, vb, p)), 1e-5);
}

TEST(Attention, BlockedKernelAcrossQueryBlocksAndKeyChunks) {
    // More than one block of 256 queries and several chunks of 2048 keys, with the causal
    // and window limits falling inside chunks; f32 and bf16 K/V.
    auto be = test_backend();
    const int64_t Tq = 300, Tk = 5000, H = 4, KV = 2, hd = 8;
    Tensor q = random_tensor({Tq, H, hd}, DType::f32, 7, -2, 2);
    Tensor k = random_tensor({Tk, KV, hd}, DType::f32, 8, -2, 2);
    Tensor v = random_tensor({Tk, KV, hd}, DType::f32, 9);
    Tensor kb = Tensor::empty(k.shape(), DType::bf16), vb = Tensor::empty(v.shape(), DType::bf16);
    be->copy_(kb, k);
    be->copy_(vb, v);
    for (int window : {0, 3000, 100}) {
        AttentionParams p;
        p.scale = 0.5f;
        p.softcap = 3.0f;
        p.causal = true;
        p.window = window;
        p.q_pos0 = 4600;
        EXPECT_LT(rel_err(be->attention(q, k, v, p), attention_ref(q, k, v, p)), 1e-5) << window;
        EXPECT_LT(rel_err(be->attention(q, kb, vb, p), attention_ref(q, kb, vb, p)), 1e-5) << window;
    }
    AttentionParams full;  // no mask at all
    full.scale = 0.3f;
    EXPECT_LT(rel_err(be->attention(q, k, v, full), attention_ref(q, k, v, full)), 1e-5);
}

TEST(Attention, RejectsBadHeads) {
    auto be = test_backend();
    Tensor q = random_tensor({1, 3, 8}, DType::f32, 1), k = random_tensor({2, 2, 8}, DType::f32, 2);
    EXPECT_THROW(be->attention(q, k, k, {}), Error);
}

TEST(Rope, RotateHalfAtPositionOffsets) {
    auto be = test_backend();
    const int64_t T = 6, H = 3, hd = 16;
    const double theta = 10000.0;
    for (int64_t pos0 : {0, 7, 5000}) {
        Tensor x = random_tensor({T, H, hd}, DType::f32, static_cast<uint32_t>(pos0));
        auto xv = values(x);
        std::vector<double> ref(xv.size());
        for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < hd / 2; ++i) {
                // Hugging Face forms the angle in f32 (inv_freq and pos·inv_freq); the rest in double here.
                const float inv = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / hd);
                const double a = static_cast<float>(static_cast<float>(pos0 + t) * inv);
                for (int64_t h = 0; h < H; ++h) {
                    const int64_t b = (t * H + h) * hd;
                    ref[b + i] = xv[b + i] * std::cos(a) - xv[b + i + hd / 2] * std::sin(a);
                    ref[b + i + hd / 2] = xv[b + i + hd / 2] * std::cos(a) + xv[b + i] * std::sin(a);
                }
            }
        be->rope_(x, pos0, theta);
        EXPECT_LT(rel_err(x, ref), 1e-6) << pos0;
    }
}

TEST(Attention, StepPositionSeesTheCacheUpToIt) {
    // A whole cache whose rows past the position are unfilled (NaN here): a position given as
    // a tensor reads only the rows it sees, as a fixed q_pos0 over those rows does.
    auto be = test_backend();
    const int64_t Tk = 12, H = 4, KV = 2, hd = 8;
    for (int64_t Tq : {1, 2})
        for (int64_t pos : {0, 4, 10})
            for (int window : {0, 3}) {
                const uint32_t seed = static_cast<uint32_t>(100 * Tq + 10 * pos + window);
                Tensor q = random_tensor({Tq, H, hd}, DType::f32, seed, -2, 2);
                Tensor k = random_tensor({Tk, KV, hd}, DType::f32, seed + 1, -2, 2);
                Tensor v = random_tensor({Tk, KV, hd}, DType::f32, seed + 2);
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
                stepped.step_pos = Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(pos)});
                const auto ref = attention_ref(q, k.rows(0, pos + Tq), v.rows(0, pos + Tq), fixed);
                EXPECT_LT(rel_err(be->attention(q, k, v, stepped), ref), 1e-5)
                    << "Tq " << Tq << " pos " << pos << " window " << window;
            }
    AttentionParams not_causal;
    not_causal.step_pos = Tensor::from_vector(std::vector<int32_t>{0});
    Tensor q = random_tensor({1, 2, 8}, DType::f32, 1), k = random_tensor({4, 2, 8}, DType::f32, 2);
    EXPECT_THROW(be->attention(q, k, k, not_causal), Error);
}

TEST(Rope, RopeAndCacheKvRotatesAndStoresAtThePosition) {
    auto be = test_backend();
    const int64_t T = 3, H = 4, KV = 2, hd = 16, rows = 10;
    for (int32_t pos : {0, 5}) {
        Tensor q = random_tensor({T, H, hd}, DType::f32, 1), k = random_tensor({T, KV, hd}, DType::f32, 2);
        Tensor v = random_tensor({T, KV, hd}, DType::f32, 3);
        Tensor kc = random_tensor({rows, KV, hd}, DType::f32, 4), vc = random_tensor({rows, KV, hd}, DType::f32, 5);
        Tensor q_ref = q.clone(), k_ref = k.clone();
        be->rope_(q_ref, pos, 10000.0);
        be->rope_(k_ref, pos, 10000.0);
        auto kc_ref = values(kc), vc_ref = values(vc);
        const auto k_rot = values(k_ref), v_new = values(v);
        const int64_t row = KV * hd;
        for (int64_t i = 0; i < T * row; ++i) {
            kc_ref[pos * row + i] = k_rot[i];
            vc_ref[pos * row + i] = v_new[i];
        }
        be->rope_and_cache_kv_(q, k, v, kc, vc, Tensor::from_vector(std::vector<int32_t>{pos}), 10000.0);
        EXPECT_EQ(rel_err(q, values(q_ref)), 0.0) << pos;
        EXPECT_EQ(rel_err(kc, kc_ref), 0.0) << pos;
        EXPECT_EQ(rel_err(vc, vc_ref), 0.0) << pos;
    }
    Tensor q = random_tensor({T, H, hd}, DType::f32, 1), k = random_tensor({T, KV, hd}, DType::f32, 2);
    Tensor kc = random_tensor({rows, KV, hd}, DType::f32, 4);
    EXPECT_THROW(be->rope_and_cache_kv_(q, k, k, kc, kc, Tensor::from_vector(std::vector<int32_t>{8}), 1e4), Error)
        << "rows 8..10 are past the cache";
    EXPECT_THROW(be->rope_and_cache_kv_(q, k, k, kc, kc, Tensor::from_vector(std::vector<int64_t>{0}), 1e4), Error)
        << "the position must be i32";
}

TEST(Attention, RepeatKv) {
    auto be = test_backend();
    Tensor v = random_tensor({3, 2, 4}, DType::f32, 1);
    Tensor r = be->repeat_kv(v, 6);
    ASSERT_EQ(r.shape(), (Shape{3, 6, 4}));
    for (int64_t t = 0; t < 3; ++t)
        for (int64_t h = 0; h < 6; ++h)
            for (int64_t e = 0; e < 4; ++e)
                EXPECT_EQ(r.data<float>()[(t * 6 + h) * 4 + e], v.data<float>()[(t * 2 + h / 3) * 4 + e]);
    EXPECT_THROW(be->repeat_kv(v, 5), Error);
}
