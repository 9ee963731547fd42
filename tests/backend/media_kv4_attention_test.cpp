// The CPU's attention over quantised media K/V (dequantised row by row inside its kernels):
// equal to attention over the same K/V dequantised on the host, in both kernels (few query
// rows and blocked), and within measured bounds of attention over the unquantised K/V.
#include <gtest/gtest.h>

#include "backend/backend_test.h"

using namespace vidi;
using namespace vidi::test;

namespace {

// Keys with an outlier channel per head (a large offset, as trained decoders' keys have).
Tensor outlier_keys(int64_t T, int64_t KV, int64_t hd, uint32_t seed) {
    Tensor k = random_tensor({T, KV, hd}, DType::f32, seed, -1.0f, 1.0f);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < KV; ++h) k.data<float>()[(t * KV + h) * hd + 5] += 12.0f;
    return k;
}

}  // namespace

TEST(MediaKv4Attention, EqualsAttentionOverTheDequantisedKeysAndValues) {
    Backend* be = &shared_backend(BackendKind::cpu);
    const int64_t H = 8, KV = 2;
    for (int64_t hd : {32, 64})
        for (int64_t Tk : {1, 127, 300})       // a partial last block of keys
            for (int64_t Tq : {1, 3, 40}) {    // 40·4 rows take the blocked kernel
                AttentionParams p;
                p.scale = 0.125f;
                p.softcap = 50.0f;
                const Tensor q = random_tensor({Tq, H, hd}, DType::f32, 1, -1.0f, 1.0f);
                const Tensor k = outlier_keys(Tk, KV, hd, 2), v = random_tensor({Tk, KV, hd}, DType::f32, 3);
                const MediaKvFormat f = media_kv_format(4, hd);
                const QTensor k4 = be->quantize(k, f.key), v4 = be->quantize(v, f.value);
                const Tensor got = be->attention(q, k4, v4, p);
                const std::vector<double> want = attention_ref(q, dequantize(k4), dequantize(v4), p);
                EXPECT_LT(rel_err(got, want), 1e-5) << "hd " << hd << " Tk " << Tk << " Tq " << Tq;
                // Against the unquantised K/V: the 4-bit error (6.2e-2 to 7.7e-2 here; one key: the
                // value's own quantisation error).
                EXPECT_LT(rel_err(got, attention_ref(q, k, v, p)), 1e-1) << "hd " << hd << " Tk " << Tk << " Tq " << Tq;
            }
}

TEST(MediaKv4Attention, CrossAttentionAddsIntoTheTextStream) {
    Backend* be = &shared_backend(BackendKind::cpu);
    const Tensor q = random_tensor({2, 4, 32}, DType::f32, 4);
    const Tensor k = outlier_keys(200, 2, 32, 5), v = random_tensor({200, 2, 32}, DType::f32, 6);
    const MediaKvFormat f = media_kv_format(4, 32);
    const QTensor k4 = be->quantize(k, f.key), v4 = be->quantize(v, f.value);
    AttentionParams p;
    p.scale = 0.2f;
    Tensor out = random_tensor({2, 4, 32}, DType::f32, 7);
    std::vector<double> want = values(out);
    const std::vector<double> a = attention_ref(q, dequantize(k4), dequantize(v4), p);
    for (size_t i = 0; i < want.size(); ++i) want[i] += a[i];
    be->attention_add_(out, q, k4, v4, p);
    EXPECT_LT(rel_err(out, want), 1e-5);
}

TEST(MediaKv4Attention, LayoutsOtherThanTheMediaOnesAreErrors) {
    Backend* be = &shared_backend(BackendKind::cpu);
    const Tensor q = random_tensor({2, 4, 32}, DType::f32, 8);
    const Tensor k = random_tensor({130, 2, 32}, DType::f32, 9);
    const MediaKvFormat f = media_kv_format(4, 32);
    const QTensor k4 = be->quantize(k, f.key), v4 = be->quantize(k, f.value);
    AttentionParams p;
    EXPECT_THROW(be->attention(q, v4, k4, p), Error);                                  // sides swapped
    EXPECT_THROW(be->attention(q, be->quantize(k, QuantFormat{4, 32}), v4, p), Error);  // keys per token
    EXPECT_THROW(be->attention(q, k4, be->quantize(k, QuantFormat{8, 0}), p), Error);   // int4 with int8
    EXPECT_THROW(be->attention(q, k4, k, p), Error);                                   // quantised with float
    p.causal = true;
    p.window = 8;
    EXPECT_THROW(be->attention(q, k4, v4, p), Error);  // no sliding window over blocked keys
    p.window = 0;
    EXPECT_NO_THROW(be->attention(q, k4, v4, p));
}
