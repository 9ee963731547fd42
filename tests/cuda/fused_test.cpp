// Fused ops give exactly what the ops they replace give: linear_geglu (one GEMV over the gate
// and up weights, float or quantised, for a decoding step's few rows; the separate ops beyond),
// add_rms_norm_ (the residual update in one pass) and attention_add_ (the few-row kernel adds
// into the output as it writes, with and without split-K; other kernels through add_).
#include "core/quantize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

QTensor weight_as(const Tensor& host, int bits) {
    if (bits == 16) return QTensor(dev(host));
    QuantFormat f;
    f.bits = bits;
    f.group = bits == 8 ? 0 : 64;
    return backend().linear_weight(vidi::quantize(host, f));
}

TEST(CudaFused, LinearGegluEqualsGegluOfTwoLinears) {
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

TEST(CudaFused, AddRmsNormEqualsAddOfNorm) {
    CudaBackend& be = backend();
    for (int64_t D : {3584, 100}) {  // 16-byte vectors, and the scalar path
        const Tensor y = dev(random_host({3, D}, -4.0f, 4.0f)), w = dev(random_host({D}));
        Tensor fused = dev(random_host({3, D}));
        Tensor apart = be.empty(fused.shape(), DType::bf16);
        be.copy_(apart, fused);
        be.add_rms_norm_(fused, y, w, 1e-6f, NormWeight::one_plus);
        be.add_(apart, be.rms_norm(y, w, 1e-6f, NormWeight::one_plus));
        expect_equal(fused, as_doubles(be.to_host(apart)), cat("add_rms_norm_ D=", D));
    }
    Tensor x = dev(random_host({2, 8}));
    EXPECT_THROW(be.add_rms_norm_(x, dev(random_host({2, 16})), dev(random_host({16})), 1e-6f, NormWeight::one_plus),
                 Error);
}

TEST(CudaFused, AttentionAddEqualsAddOfAttention) {
    CudaBackend& be = backend();
    AttentionParams p;
    p.scale = 0.1f;
    p.softcap = 30.0f;
    for (int64_t Tq : {1, 2, 40})          // few rows (decode), and the tiled kernel
        for (int64_t Tk : {40, 5000}) {    // one slice, and split-K with the merge kernel
            const Tensor q = dev(random_host({Tq, 4, 64})), k = dev(random_host({Tk, 2, 64}, -2.0f, 2.0f)),
                         v = dev(random_host({Tk, 2, 64}));
            Tensor fused = dev(random_host({Tq, 4, 64}));
            Tensor apart = be.empty(fused.shape(), DType::bf16);
            be.copy_(apart, fused);
            be.attention_add_(fused, q, QTensor(k), QTensor(v), p);
            be.add_(apart, be.attention(q, QTensor(k), QTensor(v), p));
            expect_equal(fused, as_doubles(be.to_host(apart)), cat("attention_add_ Tq=", Tq, " Tk=", Tk));
        }
}

}  // namespace
}  // namespace vidi::cuda::test
