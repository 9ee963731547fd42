// Attention against a double-precision reference: every mask combination on small sizes
// (both the one-pass and the split-K path), a prefill with several row blocks, and a
// large cross-attention of few queries over 50k keys; unmasked attention of many rows on
// tensor cores (the flash kernel, or batched GEMMs in one or several chunks of problems);
// cross_attention (the decoder's media attention) on its tensor-core kernel and its fallback.
#include <cmath>

#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaAttention : public CudaDtypes {};

struct Dims {
    int64_t Tq, Tk;
    int H, KV, hd;
};

// out[i, h, :] = softmax_j(cap(scale · q·k)) · v over visible keys; zeros when none is.
std::vector<double> reference(const Tensor& q, const Tensor& k, const Tensor& v, const Dims& d,
                              const AttentionParams& p) {
    const float* qp = q.data<float>();
    const float* kp = k.data<float>();
    const float* vp = v.data<float>();
    const int G = d.H / d.KV;
    std::vector<double> out(static_cast<size_t>(d.Tq * d.H * d.hd), 0.0);
    std::vector<double> s(static_cast<size_t>(d.Tk));
    for (int64_t i = 0; i < d.Tq; ++i) {
        const int64_t pos = p.q_pos0 + i;
        for (int h = 0; h < d.H; ++h) {
            const int g = h / G;
            const float* qr = qp + (i * d.H + h) * d.hd;
            double mx = -INFINITY;
            for (int64_t j = 0; j < d.Tk; ++j) {
                const bool vis = (!p.causal || j <= pos) && (p.window <= 0 || pos - j <= p.window);
                if (!vis) {
                    s[j] = -INFINITY;
                    continue;
                }
                const float* kr = kp + (j * d.KV + g) * d.hd;
                double dot = 0;
                for (int e = 0; e < d.hd; ++e) dot += double(qr[e]) * kr[e];
                dot *= p.scale;
                if (p.softcap > 0) dot = p.softcap * std::tanh(dot / p.softcap);
                s[j] = dot;
                mx = std::max(mx, dot);
            }
            if (mx == -INFINITY) continue;
            double sum = 0;
            double* o = out.data() + (i * d.H + h) * d.hd;
            for (int64_t j = 0; j < d.Tk; ++j) {
                if (s[j] == -INFINITY) continue;
                const double w = std::exp(s[j] - mx);
                sum += w;
                const float* vr = vp + (j * d.KV + g) * d.hd;
                for (int e = 0; e < d.hd; ++e) o[e] += w * vr[e];
            }
            for (int e = 0; e < d.hd; ++e) o[e] /= sum;
        }
    }
    return out;
}

std::string describe(const Dims& d, const AttentionParams& p) {
    return cat("Tq=", d.Tq, " Tk=", d.Tk, " H=", d.H, " KV=", d.KV, " hd=", d.hd, " causal=", p.causal,
               " window=", p.window, " q_pos0=", p.q_pos0, " softcap=", p.softcap);
}

// Runs one case; returns the relative error.
double check(const Dims& d, const AttentionParams& p, float range = 1.0f) {
    const Tensor q = random_host({d.Tq, d.H, d.hd}, -range, range);
    const Tensor k = random_host({d.Tk, d.KV, d.hd}, -range, range);
    const Tensor v = random_host({d.Tk, d.KV, d.hd});
    const Tensor out = backend().attention(dev(q), dev(k), dev(v), p);
    EXPECT_EQ(out.shape(), (Shape{d.Tq, d.H, d.hd}));
    return expect_close(out, reference(q, k, v, d, p), tol(), describe(d, p));
}

int splits_for(const Dims& d, const AttentionParams& p) {
    AttentionArgs a;
    a.Tq = d.Tq;
    a.Tk = d.Tk;
    a.H = d.H;
    a.KV = d.KV;
    a.hd = d.hd;
    a.causal = p.causal;
    a.window = p.window;
    a.q_pos0 = p.q_pos0;
    return attention_splits(a, backend().sm_count());
}

TEST_P(CudaAttention, EveryMaskCombinationOnSmallSizes) {
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
                                if (::testing::Test::HasFailure()) return;  // first failure is enough
                            }
    EXPECT_EQ(cases, 4 * 3 * 3 * 3 * 2 * 4 * 2);
}

TEST_P(CudaAttention, SplitKMatchesReference) {
    for (int64_t Tk : {1000, 5003})
        for (int64_t Tq : {1, 3})
            for (int mask = 0; mask < 3; ++mask) {
                const Dims d{Tq, Tk, 8, 2, 128};
                AttentionParams p;
                p.scale = 0.25f;
                p.softcap = 50.0f;
                p.causal = mask > 0;
                p.window = mask == 2 ? 700 : 0;
                p.q_pos0 = mask > 0 ? Tk - Tq : 0;
                EXPECT_GT(splits_for(d, p), 1) << describe(d, p);
                check(d, p, 2.0f);
            }
}

// cross_attention: tensor cores for 16-bit K/V at head dims 32, 64, 128 and 256 (the few-row
// kernel a few queries at a time otherwise: 72), from one row to several blocks of 64, from one
// key to the split-K path, with and without the soft-cap, writing or adding into an output.
TEST_P(CudaAttention, CrossAttentionMatchesReference) {
    CudaBackend& be = backend();
    int cases = 0;
    for (int hd : {32, 64, 72, 128, 256})
        for (auto [Tq, Tk] : {std::pair<int64_t, int64_t>{1, 1}, {1, 33}, {3, 2000}, {40, 700}, {130, 257}, {9, 20000}})
            for (float softcap : {0.0f, 50.0f}) {
                const Dims d{Tq, Tk, 8, 4, hd};
                AttentionParams p;
                p.scale = 2.0f / std::sqrt(float(hd));
                p.softcap = softcap;
                const Tensor q = random_host({Tq, 8, hd}), k = random_host({Tk, 4, hd}), v = random_host({Tk, 4, hd});
                const Tensor qd = dev(q);
                const QTensor kd(dev(k)), vd(dev(v));
                const std::vector<double> ref = reference(q, k, v, d, p);
                expect_close(be.cross_attention(qd, kd, vd, p), ref, tol(), "cross " + describe(d, p));
                const Tensor base = random_host({Tq, 8, hd});
                Tensor sum = dev(base);
                be.cross_attention_add_(sum, qd, kd, vd, p);
                std::vector<double> want = as_doubles(base);
                for (size_t i = 0; i < want.size(); ++i) want[i] += ref[i];
                expect_close(sum, want, tol(), "cross add " + describe(d, p));
                ++cases;
                if (::testing::Test::HasFailure()) return;
            }
    EXPECT_EQ(cases, 5 * 6 * 2);
    AttentionArgs a;
    a.Tk = 20000;
    a.KV = 4;
    EXPECT_GT(cross_attention_splits(a, be.sm_count()), 1);  // the split-K path was taken
    AttentionParams causal;
    causal.causal = true;
    const Tensor q = dev(random_host({2, 8, 64})), kv = dev(random_host({10, 4, 64}));
    EXPECT_THROW(be.cross_attention(q, QTensor(kv), QTensor(kv), causal), Error);
}

TEST_P(CudaAttention, DecodeAtEveryHeadDim) {
    for (int hd : {64, 72, 128, 256}) {
        AttentionParams p;
        p.scale = 1.0f / std::sqrt(float(hd));
        p.causal = true;
        p.q_pos0 = 2999;
        check({1, 3000, 16, 8, hd}, p, 2.0f);
    }
}

TEST_P(CudaAttention, PrefillCausalSlidingWindow) {
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
}

TEST_P(CudaAttention, HeadDimsOffTheVectorWidthArePadded) {
    // The tiny golden towers have head dims 12 (SigLIP) and 10 (Whisper).
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

TEST_P(CudaAttention, NoKeysGiveZeros) {
    AttentionParams p;
    const Tensor q = dev(random_host({3, 2, 64}));
    const Tensor k = backend().empty({0, 2, 64}, act());
    expect_equal(backend().attention(q, k, k, p), std::vector<double>(3 * 2 * 64, 0.0), "attention with Tk=0");
}

TEST_P(CudaAttention, LargeCrossAttention) {
    const Dims d{8, 50000, 16, 8, 256};
    AttentionParams p;
    p.scale = 1.0f / 16.0f;
    p.softcap = 50.0f;
    EXPECT_GT(splits_for(d, p), 1);
    check(d, p, 2.0f);
    check({40, 6000, 16, 8, 256}, p, 2.0f);  // a prompt's rows over the media: the batched GEMMs
}

// Many query rows without a mask: the tensor-core kernel (head dims 64, 72, 128) or batched
// GEMMs around a row softmax (others, here 32).
TEST_P(CudaAttention, DenseBatchOfSequencesMatchesReference) {
    for (int hd : {32, 64, 72, 128})
        for (float softcap : {0.0f, 5.0f})
            for (auto [Tq, Tk] : {std::pair<int64_t, int64_t>{100, 100}, {70, 131}, {64, 40}}) {  // 2, 3, 1 key tiles
                const int64_t n = 3;
                const Dims d{Tq, Tk, 4, 2, hd};
                AttentionParams p;
                p.scale = 2.0f / std::sqrt(float(hd));
                p.softcap = softcap;
                const Tensor q = random_host({n, Tq, d.H, hd}, -2.0f, 2.0f);
                const Tensor k = random_host({n, Tk, d.KV, hd}, -2.0f, 2.0f);
                const Tensor v = random_host({n, Tk, d.KV, hd});
                const Tensor out = backend().attention_batch(dev(q), dev(k), dev(v), p);
                ASSERT_EQ(out.shape(), (Shape{n, Tq, d.H, hd}));
                for (int64_t i = 0; i < n; ++i)
                    expect_close(out.row(i), reference(q.row(i), k.row(i), v.row(i), d, p), tol(),
                                 cat("sequence ", i, " of ", describe(d, p)));
            }
}

// More (sequence, head) problems than one chunk of scores holds (the GEMM path: head dim 32
// has no tensor-core kernel): sampled rows of every sequence against the reference.
TEST_P(CudaAttention, DenseChunksOfProblems) {
    const int64_t n = 3, T = 2048;
    const Dims one{1, T, 8, 8, 32};
    ASSERT_FALSE(flash_attention_supports(one.hd));
    ASSERT_GT(n * one.H * T * T * int64_t(sizeof(float)), int64_t(kAttentionScoreBytes));
    AttentionParams p;
    p.scale = 0.125f;
    const Tensor q = random_host({n, T, one.H, one.hd}, -2.0f, 2.0f);
    const Tensor k = random_host({n, T, one.KV, one.hd}, -2.0f, 2.0f);
    const Tensor v = random_host({n, T, one.KV, one.hd});
    const Tensor out = backend().attention_batch(dev(q), dev(k), dev(v), p);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t row : {int64_t(0), int64_t(777), T - 1})
            expect_close(out.row(i).rows(row, row + 1),
                         reference(q.row(i).rows(row, row + 1), k.row(i), v.row(i), one, p), tol(),
                         cat("sequence ", i, ", query ", row));
}

TEST_P(CudaAttention, BadShapesAreErrors) {
    AttentionParams p;
    const Tensor q = dev(random_host({2, 4, 64})), k = dev(random_host({5, 3, 64}));
    EXPECT_THROW(backend().attention(q, k, k, p), Error);  // 4 heads, 3 KV heads
    const Tensor q512 = dev(random_host({1, 1, 512})), k512 = dev(random_host({2, 1, 512}));
    EXPECT_THROW(backend().attention(q512, k512, k512, p), Error);
    const Tensor q4 = dev(random_host({2, 64, 4, 64})), k4 = dev(random_host({3, 64, 4, 64}));
    EXPECT_THROW(backend().attention_batch(q4, k4, k4, p), Error);  // 2 query sequences, 3 key sequences
}

VIDI_CUDA_DTYPES(CudaAttention);

}  // namespace
}  // namespace vidi::cuda::test
