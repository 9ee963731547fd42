// Early launches (early_launch.h): the few-row GEMV and the step's cross-attention may start
// while the kernel before them still runs, fetching weights (media K/V) meanwhile. What they
// read of earlier kernels' output must be what those wrote. The chains of a decoding step run
// with nothing between the kernels (new tensors are not filled here, which would put a memset
// before every GEMV): a norm then a GEMV, a norm then the GeGLU GEMV then the down GEMV, a norm
// then the q GEMV then the step's cross-attention over two media streams (the second reads q
// two kernels after the GEMV wrote it). Each output is checked bit for bit against the same op
// over a copy of its input made from the host while the device was idle (nothing to overlap).
// A round's tensors take the memory the last round's freed, so a stale read shows as the last
// round's values.
#include <string>

#include "backend/cuda/early_launch.h"
#include "core/env_switch.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaEarlyLaunch : public CudaDtypes {
protected:
    void SetUp() override {
        CudaDtypes::SetUp();
        backend().set_poison_new_tensors(false);
    }
    void TearDown() override {
        backend().set_poison_new_tensors(true);
        CudaDtypes::TearDown();
    }
};

// t's values in a new device tensor, the device idle once it is there.
Tensor settled_copy(const Tensor& t) {
    Tensor c = dev(Tensor::from_vector(host_values(t), t.shape()));
    VIDI_CUDA_CHECK(cudaStreamSynchronize(backend().stream()));
    return c;
}

TEST_P(CudaEarlyLaunch, TheDeviceTakesThemFromHopperOn) {
    int device = 0, major = 0;
    ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
    ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
    EXPECT_EQ(early_launch_enabled(), major >= 9 && !env_is("VIDI_EARLY_LAUNCH", "0"));
}

TEST_P(CudaEarlyLaunch, KernelsReadWhatTheKernelsBeforeThemWrote) {
    CudaBackend& be = backend();
    const int64_t D = 3584, I = 4096, H = 16, KV = 8, hd = 256, Tk = 4096;
    const QTensor w = be.linear_weight(QTensor(random_host({I, D})));
    const QTensor gate = be.linear_weight(QTensor(random_host({I, D})));
    const QTensor up = be.linear_weight(QTensor(random_host({I, D})));
    const QTensor down = be.linear_weight(QTensor(random_host({D, I})));
    const QTensor wq = be.linear_weight(QTensor(random_host({H * hd, D})));
    const Tensor norm_w = dev(random_host({D}));
    const QTensor k1(dev(random_host({Tk, KV, hd}))), v1(dev(random_host({Tk, KV, hd})));
    const QTensor k2(dev(random_host({Tk / 4, KV, hd}))), v2(dev(random_host({Tk / 4, KV, hd})));
    AttentionParams step;
    step.scale = 1.0f / 16.0f;
    step.softcap = 50.0f;
    step.step_rows = true;
    auto norm = [&](const Tensor& x) { return be.rms_norm(x, norm_w, 1e-6f, NormWeight::one_plus); };
    auto attend = [&](const Tensor& q) {
        Tensor a = be.cross_attention(q, k1, v1, step);
        be.cross_attention_add_(a, q, k2, v2, step);
        return a;
    };
    for (int round = 0; round < 24; ++round) {
        const int64_t rows = round % 2 ? 16 : 1 + round % 7;
        const Tensor r1 = dev(random_host({rows, D})), r2 = dev(random_host({rows, D}));
        const Tensor y = be.linear(norm(r1), w);
        const Tensor g = be.linear_glu(norm(r2), gate, up, Glu::gelu_tanh);
        const Tensor d = be.linear(g, down);
        const Tensor q = be.linear(norm(r1), wq).reshape({rows, H, hd});
        const Tensor a = attend(q);
        const std::string what = cat(dtype_name(act()), " round ", round, ", ", rows, " rows");
        const Tensor h1 = settled_copy(norm(r1)), h2 = settled_copy(norm(r2));
        expect_same_bits(host_values(y), host_values(be.linear(h1, w)), "linear after a norm, " + what);
        expect_same_bits(host_values(g), host_values(be.linear_glu(h2, gate, up, Glu::gelu_tanh)),
                         "GeGLU after a norm, " + what);
        expect_same_bits(host_values(d), host_values(be.linear(settled_copy(g), down)), "down after GeGLU, " + what);
        const Tensor q_ref = settled_copy(q);
        expect_same_bits(host_values(q), host_values(be.linear(h1, wq)), "q after a norm, " + what);
        expect_same_bits(host_values(a), host_values(attend(q_ref)), "step cross-attention after q, " + what);
    }
}

VIDI_CUDA_DTYPES(CudaEarlyLaunch);

}  // namespace
}  // namespace vidi::cuda::test
