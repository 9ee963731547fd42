// Which path the CUDA backend's kernels take, and the rules that only a GPU has: split-K for
// few queries over many keys (attention and cross_attention), the tensor-core attention's head dims, a step position that
// must live on the device (rows past the cache are not written), refused host tensors and
// dtypes. The numbers of every path are checked by the parameterised suite (tests/backend).
#include <cmath>

#include "backend/cuda/kernels.h"
#include "core/quantize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaPaths : public CudaDtypes {};

int splits_for(int64_t Tq, int64_t Tk, int H, int KV, int hd, bool causal, int window, int64_t q_pos0) {
    AttentionArgs a;
    a.Tq = Tq;
    a.Tk = Tk;
    a.H = H;
    a.KV = KV;
    a.hd = hd;
    a.causal = causal;
    a.window = window;
    a.q_pos0 = q_pos0;
    return attention_splits(a, backend().sm_count());
}

QuantFormat format(int bits, int group) {
    QuantFormat f;
    f.bits = bits;
    f.group = group;
    return f;
}

TEST_P(CudaPaths, FewQueriesOverManyKeysSplitK) {
    // The shapes of the suite's Attention.ManyKeysSplitOverTheDevice, LargeCrossAttention and
    // Quant.Int8KeyValuesWithCausalWindowOverManyKeys.
    for (int64_t Tk : {1000, 5003})
        for (int64_t Tq : {1, 3})
            for (int mask = 0; mask < 3; ++mask)
                EXPECT_GT(splits_for(Tq, Tk, 8, 2, 128, mask > 0, mask == 2 ? 700 : 0, mask > 0 ? Tk - Tq : 0), 1)
                    << "Tq " << Tq << " Tk " << Tk << " mask " << mask;
    EXPECT_GT(splits_for(8, 50000, 16, 8, 256, false, 0, 0), 1);
    EXPECT_GT(splits_for(3, 5003, 16, 8, 128, true, 700, 5000), 1);
}

TEST_P(CudaPaths, CrossAttentionSplitsManyKeys) {
    // The suite's Attention.CrossAttentionMatchesReference at 20000 keys takes the split-K path;
    // the split count depends on the keys only (each row's bits as alone).
    AttentionArgs a;
    a.Tk = 20000;
    a.KV = 4;
    EXPECT_GT(cross_attention_splits(a, backend().sm_count()), 1);
}

TEST_P(CudaPaths, TensorCoreAttentionHeadDims) {
    for (int hd : {64, 72, 128}) EXPECT_TRUE(flash_attention_supports(hd)) << hd;
    EXPECT_FALSE(flash_attention_supports(32));  // the suite's DenseChunksOfProblems: batched GEMMs
}

TEST_P(CudaPaths, AStepPositionLivesOnTheDeviceAndRowsPastTheCacheStayUnwritten) {
    CudaBackend& be = backend();
    constexpr int64_t kRows = 20, kGuard = 3;
    const int64_t T = 5;
    const int32_t pos = 17;  // rows 17..21: the last two past the cache
    const Tensor qh = random_host({T, 8, 256}), kh = random_host({T, 4, 256}), vh = random_host({T, 4, 256});
    const Tensor kc_h = random_host({kRows + kGuard, 4, 256}), vc_h = random_host({kRows + kGuard, 4, 256});
    Tensor q = dev(qh), k = dev(kh), v = dev(vh), kc_all = dev(kc_h), vc_all = dev(vc_h);
    Tensor kc = kc_all.rows(0, kRows), vc = vc_all.rows(0, kRows);
    be.rope_and_cache_kv_(q, k, v, kc, vc, dev(Tensor::from_vector(std::vector<int32_t>{pos})), 10000.0);
    Tensor k2 = dev(kh);
    be.rope_(k2, pos, 10000.0);
    std::vector<double> k_ref = values(kc_h), v_ref = values(vc_h);
    const std::vector<double> k_rot = values(be.to_host(k2)), v_new = values(be.to_host(v));
    const int64_t row = 4 * 256;
    for (int64_t t = 0; t < T && pos + t < kRows; ++t)
        for (int64_t i = 0; i < row; ++i) {
            k_ref[(pos + t) * row + i] = k_rot[t * row + i];
            v_ref[(pos + t) * row + i] = v_new[t * row + i];
        }
    expect_equal(kc_all, k_ref, "k cache past its end");
    expect_equal(vc_all, v_ref, "v cache past its end");
    EXPECT_THROW(be.rope_and_cache_kv_(q, k, v, kc, vc, Tensor::from_vector(std::vector<int32_t>{0}), 10000.0),
                 Error);  // the position in host memory
}

TEST_P(CudaPaths, ResidualAndGemmEpilogueRules) {
    CudaBackend& be = backend();
    Tensor same = dev(random_host({64, 32}));
    EXPECT_THROW(be.linear_add_(same, same, QTensor(dev(random_host({32, 32})))), Error);  // reads what it writes
    Tensor both32 = be.empty({2, 64}, DType::f32);
    EXPECT_THROW(be.add_rms_norm_(both32, both32, dev(random_host({64})), 1e-6f, NormWeight::one_plus), Error);
}

TEST_P(CudaPaths, FloatWeightsAreHeldInTheActivationDtype) {
    const QTensor wd = backend().linear_weight(QTensor(random_host({20, 64})));
    EXPECT_FALSE(wd.quantized());
    EXPECT_EQ(wd.values.dtype(), act());
    EXPECT_EQ(wd.device(), Device::cuda);
}

TEST_P(CudaPaths, HostTensorsAndBadQuantisedWeightsAreRefused) {
    CudaBackend& be = backend();
    const QTensor wq = vidi::quantize(random_host({16, 128}), format(4, 64));
    const QTensor wd = be.linear_weight(wq);
    EXPECT_THROW(be.linear(dev(random_host({2, 128})), wq), Error);  // host weight
    QTensor bad_scales = wd;
    bad_scales.scales = wd.scales.reshape({32, 1});
    EXPECT_THROW(be.linear(dev(random_host({2, 128})), bad_scales), Error);
    QTensor bad_bits = wq;
    bad_bits.bits = 2;
    EXPECT_THROW(be.linear_weight(bad_bits), Error);
    EXPECT_THROW(be.quantize(random_host({2, 64}), format(8, 0)), Error);  // host tensor
}

VIDI_CUDA_DTYPES(CudaPaths);

}  // namespace
}  // namespace vidi::cuda::test
