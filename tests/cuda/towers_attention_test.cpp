// The towers' attention kernels (attention_flash.cu: streaming and resident) against a double
// reference and against each other, in both activation dtypes, at the towers' shapes (SigLIP:
// 729 rows of head dim 72; Whisper: head dim 64 over 1500 keys) and at ragged ones: rows and keys
// that end inside a tile, a single key, grouped KV heads, several sequences.
#include <cmath>
#include <cstring>

#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaFlashAttention : public CudaDtypes {};

struct Shape4 {
    int64_t n, Tq, Tk;
    int H, KV, hd;
    std::string name() const {
        return "n " + std::to_string(n) + " Tq " + std::to_string(Tq) + " Tk " + std::to_string(Tk) + " H " +
               std::to_string(H) + "/" + std::to_string(KV) + " hd " + std::to_string(hd);
    }
};

const Shape4 kShapes[] = {
    {2, 729, 729, 4, 4, 72},   // SigLIP's frame (four of its 16 heads)
    {1, 300, 1500, 4, 4, 64},  // Whisper's keys
    {3, 100, 70, 8, 2, 72},    // rows and keys ending inside a tile, grouped KV heads
    {1, 65, 1, 2, 1, 64},      // a single key
    {1, 64, 128, 2, 2, 72},    // whole tiles
};

AttentionArgs args_of(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Shape4& s,
                      float scale) {
    AttentionArgs a;
    a.act = act();
    a.q = q.raw();
    a.k = k.raw();
    a.v = v.raw();
    a.out = out.raw();
    a.Tq = s.Tq;
    a.Tk = s.Tk;
    a.H = s.H;
    a.KV = s.KV;
    a.hd = s.hd;
    a.scale = scale;
    return a;
}

// One kernel on q [n, Tq, H, hd], k/v [n, Tk, KV, hd]; undefined where it did not launch.
Tensor run(FlashKernel which, const Tensor& q, const Tensor& k, const Tensor& v, const Shape4& s, float scale) {
    Tensor out = backend().empty(q.shape(), act());
    const bool launched =
        flash_attention(args_of(q, k, v, out, s, scale), s.n, backend().sm_count(), backend().stream(), which);
    backend().synchronize();
    return launched ? out : Tensor();
}

bool same_bytes(const Tensor& a, const Tensor& b) {
    const Tensor ha = backend().to_host(a), hb = backend().to_host(b);
    return ha.nbytes() == hb.nbytes() && std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

// Per sequence, the double reference of q, k, v (host tensors) in one flat vector.
std::vector<double> reference(const Tensor& q, const Tensor& k, const Tensor& v, const Shape4& s, float scale) {
    AttentionParams p;
    p.scale = scale;
    std::vector<double> all;
    for (int64_t i = 0; i < s.n; ++i) {
        const auto ref = vidi::test::attention_ref(q.rows(i, i + 1).reshape({s.Tq, s.H, s.hd}),
                                                   k.rows(i, i + 1).reshape({s.Tk, s.KV, s.hd}),
                                                   v.rows(i, i + 1).reshape({s.Tk, s.KV, s.hd}), p);
        all.insert(all.end(), ref.begin(), ref.end());
    }
    return all;
}

// Random q, k, v of a shape (scores spread enough that the softmax is far from uniform), on the
// host and the device.
struct Problem {
    Tensor qh, kh, vh, q, k, v;
    float scale;
    explicit Problem(const Shape4& s)
        : qh(random_host({s.n, s.Tq, s.H, s.hd}, -3.0f, 3.0f)),
          kh(random_host({s.n, s.Tk, s.KV, s.hd}, -3.0f, 3.0f)),
          vh(random_host({s.n, s.Tk, s.KV, s.hd})),
          q(dev(qh)),
          k(dev(kh)),
          v(dev(vh)),
          scale(1.0f / std::sqrt(float(s.hd))) {}
};

// The shared memory a block may opt into on this device.
size_t block_optin_bytes() {
    int device = 0, optin = 0;
    EXPECT_EQ(cudaGetDevice(&device), cudaSuccess);
    EXPECT_EQ(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), cudaSuccess);
    return static_cast<size_t>(optin);
}

// The resident kernel runs each row through the streaming kernel's very arithmetic (FlashWarp),
// so where it launches its bytes are the streaming kernel's; it launches wherever a sequence's
// keys fit a block (SigLIP's 729 on a Hopper's 227 KiB) and never where they cannot (Whisper's
// 1500 keys need 432 KiB).
TEST_P(CudaFlashAttention, ResidentEqualsStreamingAndTheReference) {
    for (const Shape4& s : kShapes) {
        const Problem p(s);
        const std::vector<double> ref = reference(p.qh, p.kh, p.vh, s, p.scale);
        const Tensor streaming = run(FlashKernel::streaming, p.q, p.k, p.v, s, p.scale);
        ASSERT_TRUE(streaming.defined()) << s.name();
        expect_close(streaming, ref, tol(), s.name() + " (streaming)");
        const Tensor resident = run(FlashKernel::resident, p.q, p.k, p.v, s, p.scale);
        const size_t keys_bytes = size_t((s.Tk + 63) / 64 * 64) * 2 * 72 * 2;  // K and V rows of 72 u16
        EXPECT_EQ(resident.defined(), keys_bytes <= block_optin_bytes()) << s.name();
        if (!resident.defined()) continue;
        expect_close(resident, ref, tol(), s.name() + " (resident)");
        EXPECT_TRUE(same_bytes(resident, streaming)) << s.name();
    }
}

// SigLIP's whole batch (16 frames of 16 heads: more (sequence, head) pairs than SMs, so a block
// takes all of a pair's rows) where the device holds its keys.
TEST_P(CudaFlashAttention, ResidentEqualsStreamingOnSigLipsBatch) {
    const Shape4 s{16, 729, 729, 16, 16, 72};
    const Problem p(s);
    const Tensor resident = run(FlashKernel::resident, p.q, p.k, p.v, s, p.scale);
    if (!resident.defined()) {
        EXPECT_LT(block_optin_bytes(), size_t(768) * 2 * 72 * 2);
        GTEST_SKIP() << "a block of this device cannot hold 729 keys (" << backend().name() << ")";
    }
    EXPECT_TRUE(same_bytes(resident, run(FlashKernel::streaming, p.q, p.k, p.v, s, p.scale)));
}

VIDI_CUDA_DTYPES(CudaFlashAttention);

}  // namespace
}  // namespace vidi::cuda::test
