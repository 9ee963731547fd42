// Fused ops give exactly what the ops they replace give: linear_geglu (one GEMV over the gate
// and up weights, float or quantised, for a decoding step's few rows; the separate ops beyond),
// linear_into_ (q, k and v in one GEMV, written into views), add_rms_norm_ (the residual update
// in one pass) and add_rms_norm_then_norm_ (with the next input norm), rope_and_cache_kv_
// (queries and keys rotated, keys and values stored in the caches, at a position read on the
// device, in one launch), attention_add_ (the few-row kernel adds into the output as it writes,
// with and without split-K; other kernels through add_), and top_picks (the greedy pick on the
// device) the host scan's pick. linear_gelu and linear_add_ (GELU or the residual sum in the
// GEMM's epilogue, rounded once) are checked against double-precision references instead.
#include <cmath>

#include "core/quantize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaFused : public CudaDtypes {};

QTensor weight_as(const Tensor& host, int bits) {
    if (bits == 16) return QTensor(dev(host));
    QuantFormat f;
    f.bits = bits;
    f.group = bits == 8 ? 0 : 64;
    return backend().linear_weight(vidi::quantize(host, f));
}

TEST_P(CudaFused, LinearGegluEqualsGegluOfTwoLinears) {
    CudaBackend& be = backend();
    for (int bits : {16, 8, 4})
        for (int64_t M : {1, 3, 4, 20}) {  // 20 rows: past the GEMV, the separate ops
            const int64_t N = 300, K = 512;
            const Tensor x = dev(random_host({M, K}));
            const QTensor gate = weight_as(random_host({N, K}), bits), up = weight_as(random_host({N, K}), bits);
            const Tensor fused = be.linear_geglu(x, gate, up);
            const Tensor apart = be.geglu(be.linear(x, gate), be.linear(x, up));
            expect_equal(fused, as_doubles(be.to_host(apart)), cat("linear_geglu bits=", bits, " M=", M));
        }
}

TEST_P(CudaFused, LinearGeluAndLinearAddMatchTheReference) {
    CudaBackend& be = backend();
    const int64_t N = 200, K = 256;
    for (int64_t M : {1, 64, 300})  // 1 row: the GEMV and the separate ops; more: the GEMM's epilogue
        for (bool with_bias : {true, false}) {
            const Tensor xh = random_host({M, K}, -2.0f, 2.0f), wh = random_host({N, K}, -0.2f, 0.2f),
                         bh = random_host({N}), y0 = random_host({M, N});
            const Tensor x = dev(xh), b = with_bias ? dev(bh) : Tensor();
            const QTensor w(dev(wh));
            const std::vector<double> lin = linear_reference(xh, wh, with_bias ? &bh : nullptr, M, N, K);
            const std::string what = cat(" M=", M, with_bias ? " with bias" : " without bias");
            for (Gelu kind : {Gelu::tanh, Gelu::erf}) {  // erf: no such epilogue, the separate ops
                std::vector<double> ref = lin;
                for (double& v : ref) v = kind == Gelu::tanh ? gelu_tanh(v) : gelu_erf(v);
                expect_close(be.linear_gelu(x, w, b, kind), ref, tol(),
                             cat("linear_gelu ", kind == Gelu::tanh ? "tanh" : "erf", what));
            }
            Tensor y = dev(y0);
            be.linear_add_(y, x, w, b);
            std::vector<double> ref = as_doubles(y0);
            for (size_t i = 0; i < ref.size(); ++i) ref[i] += lin[i];
            expect_close(y, ref, tol(), "linear_add_" + what);
        }
    Tensor small = be.empty({4, 8}, act());
    EXPECT_THROW(be.linear_add_(small, dev(random_host({64, 32})), QTensor(dev(random_host({8, 32})))), Error);
    Tensor same = dev(random_host({64, 32}));
    EXPECT_THROW(be.linear_add_(same, same, QTensor(dev(random_host({32, 32})))), Error);  // reads what it writes
}

TEST_P(CudaFused, LinearIntoEqualsLinearsWrittenIntoViews) {
    CudaBackend& be = backend();
    const int64_t K = 512, Nq = 256, Nkv = 128;
    for (int bits : {16, 8, 4})
        for (int64_t M : {1, 3, 20}) {  // 20 rows: past the GEMV, one linear() and copy_ each
            const Tensor x = dev(random_host({M, K}));
            const QTensor wq = weight_as(random_host({Nq, K}), bits), wk = weight_as(random_host({Nkv, K}), bits),
                          wv = weight_as(random_host({Nkv, K}), bits);
            // k and v land in rows 5.. of caches whose other rows must stay as they were.
            const Tensor cache_init = random_host({M + 9, Nkv});
            Tensor q = be.empty({M, Nq}, act()), kc = dev(cache_init), vc = dev(cache_init);
            Tensor k = kc.rows(5, 5 + M), v = vc.rows(5, 5 + M);
            be.linear_into_({&q, &k, &v}, x, {&wq, &wk, &wv});
            const std::string what = cat("linear_into_ bits=", bits, " M=", M);
            expect_equal(q, as_doubles(be.to_host(be.linear(x, wq))), what + " q");
            for (auto [cache, w] : {std::pair{&kc, &wk}, std::pair{&vc, &wv}}) {
                std::vector<double> want = as_doubles(cache_init);
                const std::vector<double> rows = as_doubles(be.to_host(be.linear(x, *w)));
                std::copy(rows.begin(), rows.end(), want.begin() + 5 * Nkv);
                expect_equal(*cache, want, what + " cache");
            }
        }
    Tensor q = be.empty({1, 8}, act());
    const QTensor w(dev(random_host({16, 64})));
    EXPECT_THROW(be.linear_into_({&q}, dev(random_host({1, 64})), {&w}), Error);  // output too small
}

TEST_P(CudaFused, AddRmsNormEqualsAddOfNorm) {
    CudaBackend& be = backend();
    for (int64_t D : {3584, 100}) {  // 16-byte vectors, and the scalar path
        const Tensor y = dev(random_host({3, D}, -4.0f, 4.0f)), w = dev(random_host({D}));
        Tensor fused = dev(random_host({3, D}));
        Tensor apart = be.empty(fused.shape(), act());
        be.copy_(apart, fused);
        be.add_rms_norm_(fused, y, w, 1e-6f, NormWeight::one_plus);
        be.add_(apart, be.rms_norm(y, w, 1e-6f, NormWeight::one_plus));
        expect_equal(fused, as_doubles(be.to_host(apart)), cat("add_rms_norm_ D=", D));
    }
    Tensor x = dev(random_host({2, 8}));
    EXPECT_THROW(be.add_rms_norm_(x, dev(random_host({2, 16})), dev(random_host({16})), 1e-6f, NormWeight::one_plus),
                 Error);
}

TEST_P(CudaFused, AddRmsNormThenNormEqualsTheTwoOps) {
    CudaBackend& be = backend();
    for (int64_t D : {3584, 100}) {  // 16-byte vectors, and the scalar path
        const Tensor y = dev(random_host({3, D}, -4.0f, 4.0f)), w = dev(random_host({D})), w2 = dev(random_host({D}));
        Tensor fused = dev(random_host({3, D}));
        Tensor apart = be.empty(fused.shape(), act());
        be.copy_(apart, fused);
        const Tensor next = be.add_rms_norm_then_norm_(fused, y, w, w2, 1e-6f, NormWeight::one_plus);
        be.add_rms_norm_(apart, y, w, 1e-6f, NormWeight::one_plus);
        expect_equal(fused, as_doubles(be.to_host(apart)), cat("add_rms_norm_then_norm_ residual D=", D));
        expect_equal(next, as_doubles(be.to_host(be.rms_norm(apart, w2, 1e-6f, NormWeight::one_plus))),
                     cat("add_rms_norm_then_norm_ next input D=", D));
    }
}

TEST_P(CudaFused, F32ResidualStreamTakesTheRoundedNormUnrounded) {
    // The decoder's residual stream in f32: x += the 16-bit norm of y, summed in f32 and not
    // rounded again; the next input is the norm of that f32 row.
    CudaBackend& be = backend();
    for (int64_t D : {3584, 100}) {  // 16-byte vectors, and the scalar path
        const Tensor xh = random_host({3, D}, -8.0f, 8.0f), y = dev(random_host({3, D}, -4.0f, 4.0f)),
                     w = dev(random_host({D})), w2 = dev(random_host({D}));
        Tensor fused = be.empty({3, D}, DType::f32), apart = be.empty({3, D}, DType::f32);
        be.copy_(fused, xh);
        be.copy_(apart, xh);
        const Tensor next = be.add_rms_norm_then_norm_(fused, y, w, w2, 1e-6f, NormWeight::one_plus);
        be.add_rms_norm_(apart, y, w, 1e-6f, NormWeight::one_plus);
        const Tensor n = be.to_host(be.rms_norm(y, w, 1e-6f, NormWeight::one_plus));
        std::vector<double> want(static_cast<size_t>(3 * D));
        for (size_t i = 0; i < want.size(); ++i) want[i] = xh.data<float>()[i] + n.data<float>()[i];  // f32 sums
        expect_equal(fused, want, cat("f32 residual, fused, D=", D));
        expect_equal(apart, want, cat("f32 residual, add_rms_norm_, D=", D));
        const Tensor alone = be.rms_norm(fused, w2, 1e-6f, NormWeight::one_plus);
        EXPECT_EQ(alone.dtype(), act());
        expect_equal(next, as_doubles(be.to_host(alone)), cat("f32 residual, next input, D=", D));
        // rms_norm of the f32 row against a double reference.
        const Tensor xr = be.to_host(fused), wr = be.to_host(w2);
        std::vector<double> ref(static_cast<size_t>(3 * D));
        for (int64_t r = 0; r < 3; ++r) {
            double ss = 0;
            for (int64_t i = 0; i < D; ++i) ss += double(xr.data<float>()[r * D + i]) * xr.data<float>()[r * D + i];
            const double inv = 1.0 / std::sqrt(ss / double(D) + 1e-6);
            for (int64_t i = 0; i < D; ++i)
                ref[r * D + i] = xr.data<float>()[r * D + i] * inv * (1.0 + wr.data<float>()[i]);
        }
        expect_close(alone, ref, tol(), cat("rms_norm of an f32 row, D=", D));
    }
    Tensor both32 = be.empty({2, 64}, DType::f32);
    EXPECT_THROW(be.add_rms_norm_(both32, both32, dev(random_host({64})), 1e-6f, NormWeight::one_plus), Error);
}

TEST_P(CudaFused, RopeAndCacheKvEqualsRopesAndRowCopies) {
    CudaBackend& be = backend();
    constexpr int64_t kRows = 20, kGuard = 3;  // cache rows, then rows that must stay untouched
    for (auto [T, pos] : {std::pair<int64_t, int32_t>{1, 0}, {1, 7}, {5, 7}, {5, 17}}) {
        const Tensor qh = random_host({T, 8, 256}), kh = random_host({T, 4, 256}), vh = random_host({T, 4, 256});
        const Tensor kc_h = random_host({kRows + kGuard, 4, 256}), vc_h = random_host({kRows + kGuard, 4, 256});
        Tensor q = dev(qh), k = dev(kh), v = dev(vh), kc_all = dev(kc_h), vc_all = dev(vc_h);
        Tensor kc = kc_all.rows(0, kRows), vc = vc_all.rows(0, kRows);
        be.rope_and_cache_kv_(q, k, v, kc, vc, dev(Tensor::from_vector(std::vector<int32_t>{pos})), 10000.0);

        Tensor q2 = dev(qh), k2 = dev(kh);
        be.rope_(q2, pos, 10000.0);
        be.rope_(k2, pos, 10000.0);
        expect_equal(q, as_doubles(be.to_host(q2)), cat("q T=", T, " pos=", pos));
        // Rows pos.. of the caches hold the rotated k and v, up to the cache's end; the rest
        // (the guard rows past it included) keep what they held.
        std::vector<double> k_ref = as_doubles(kc_h), v_ref = as_doubles(vc_h);
        const std::vector<double> k_rot = as_doubles(be.to_host(k2)), v_new = as_doubles(be.to_host(v));
        const int64_t row = 4 * 256;
        for (int64_t t = 0; t < T && pos + t < kRows; ++t)
            for (int64_t i = 0; i < row; ++i) {
                k_ref[(pos + t) * row + i] = k_rot[t * row + i];
                v_ref[(pos + t) * row + i] = v_new[t * row + i];
            }
        expect_equal(kc_all, k_ref, cat("k cache T=", T, " pos=", pos));
        expect_equal(vc_all, v_ref, cat("v cache T=", T, " pos=", pos));
    }
    Tensor q = dev(random_host({2, 8, 64})), k = dev(random_host({3, 4, 64})), v = dev(random_host({3, 4, 64}));
    Tensor kc = dev(random_host({8, 4, 64})), vc = dev(random_host({8, 4, 64}));
    const Tensor pos = dev(Tensor::from_vector(std::vector<int32_t>{0}));
    EXPECT_THROW(be.rope_and_cache_kv_(q, k, v, kc, vc, pos, 10000.0), Error);  // q and k differ in positions
    Tensor q3 = dev(random_host({3, 8, 64}));
    EXPECT_THROW(be.rope_and_cache_kv_(q3, k, v, kc, vc, Tensor::from_vector(std::vector<int32_t>{0}), 10000.0),
                 Error);  // the position in host memory
}

TEST_P(CudaFused, TopPicksEqualTheHostScan) {
    CudaBackend& be = backend();
    for (int64_t N : {256000, 1001}) {  // Gemma's vocabulary (16-byte vectors), and the scalar path
        Tensor h = random_host({4, N}, -30.0f, 30.0f);
        float* x = h.data<float>();
        x[0 * N + 17] = x[0 * N + N - 3] = 40.0f;  // row 0: a tie for the top (the first index wins, margin 0)
        x[1 * N + N - 1] = 50.0f;                  // row 1: the top in the last element
        x[1 * N + 2] = 49.5f;
        for (int64_t i = 0; i < N; ++i) x[2 * N + i] = -INFINITY;  // row 2: nothing above -inf
        x[3 * N + 5] = NAN;                                           // row 3: a NaN is never the pick
        const std::vector<TopPick> got = be.top_picks(dev(h));
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
}

TEST_P(CudaFused, AttentionAddEqualsAddOfAttention) {
    CudaBackend& be = backend();
    AttentionParams p;
    p.scale = 0.1f;
    p.softcap = 30.0f;
    for (int64_t Tq : {1, 2, 40})          // few rows (decode), and the tiled kernel
        for (int64_t Tk : {40, 5000}) {    // one slice, and split-K with the merge kernel
            const Tensor q = dev(random_host({Tq, 4, 64})), k = dev(random_host({Tk, 2, 64}, -2.0f, 2.0f)),
                         v = dev(random_host({Tk, 2, 64}));
            Tensor fused = dev(random_host({Tq, 4, 64}));
            Tensor apart = be.empty(fused.shape(), act());
            be.copy_(apart, fused);
            be.attention_add_(fused, q, QTensor(k), QTensor(v), p);
            be.add_(apart, be.attention(q, QTensor(k), QTensor(v), p));
            expect_equal(fused, as_doubles(be.to_host(apart)), cat("attention_add_ Tq=", Tq, " Tk=", Tk));
        }
}

VIDI_CUDA_DTYPES(CudaFused);

}  // namespace
}  // namespace vidi::cuda::test
