// Early launches (early_launch.h): the few-row GEMV and the step's cross-attention may start
// while the kernel before them still runs, fetching their weights (media K/V) meanwhile. What
// they read of that kernel's output must be what it wrote: here a norm writes each GEMV's
// input into memory the pool hands out again and again (the last round's input is still
// there), and the GEMV's output is checked bit for bit against the same GEMV over a copy of
// the input uploaded from the host (no kernel before it). Also the MLP's chain of two GEMVs
// (GeGLU's gate/up, then down), where the second starts early behind the first. A stale read
// (the read-only cache path, a missing wait) gives other bits.
#include <cstdlib>
#include <string>

#include "backend/cuda/early_launch.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaEarlyLaunch : public CudaDtypes {};

TEST_P(CudaEarlyLaunch, TheDeviceTakesThemFromHopperOn) {
    int device = 0, major = 0;
    ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
    ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
    const char* env = std::getenv("VIDI_EARLY_LAUNCH");
    EXPECT_EQ(early_launch_enabled(), major >= 9 && !(env && std::string(env) == "0"));
}

TEST_P(CudaEarlyLaunch, AGemvReadsWhatTheKernelBeforeItWrote) {
    CudaBackend& be = backend();
    const int64_t D = 3584, I = 4096;
    const QTensor w = be.linear_weight(QTensor(random_host({I, D})));
    const QTensor gate = be.linear_weight(QTensor(random_host({I, D})));
    const QTensor up = be.linear_weight(QTensor(random_host({I, D})));
    const QTensor down = be.linear_weight(QTensor(random_host({D, I})));
    const Tensor norm_w = dev(random_host({D}));
    for (int round = 0; round < 24; ++round) {
        const int64_t rows = round % 2 ? 16 : 1 + round % 7;
        const Tensor h = be.rms_norm(dev(random_host({rows, D})), norm_w, 1e-6f, NormWeight::one_plus);
        const Tensor y = be.linear(h, w);
        const Tensor g = be.linear_glu(h, gate, up, Glu::gelu_tanh);
        const Tensor d = be.linear(g, down);
        // The same inputs from the host: these GEMVs have no kernel before them to overlap.
        const Tensor h2 = dev(Tensor::from_vector(host_values(h), {rows, D}));
        const Tensor g2 = dev(Tensor::from_vector(host_values(g), {rows, I}));
        const std::string what = cat(dtype_name(act()), " round ", round, ", ", rows, " rows");
        expect_same_bits(host_values(y), host_values(be.linear(h2, w)), "linear after a norm, " + what);
        expect_same_bits(host_values(g), host_values(be.linear_glu(h2, gate, up, Glu::gelu_tanh)),
                         "GeGLU after a norm, " + what);
        expect_same_bits(host_values(d), host_values(be.linear(g2, down)), "down after GeGLU, " + what);
    }
}

VIDI_CUDA_DTYPES(CudaEarlyLaunch);

}  // namespace
}  // namespace vidi::cuda::test
