// linear() and its fused forms against double references: every weight dtype, the few-row
// paths (the CPU's fused rows, a GPU's GEMV) and the blocked/GEMM paths, bias, leading
// dimensions; linear_gelu and linear_add_ (the epilogue forms); linear_into_ and linear_glu
// equal to the ops they replace; shape errors.
#include "backend/backend_test.h"
#include "core/quantize.h"

using namespace vidi;
using namespace vidi::test;

namespace {

struct LinearCase {
    Shape x_shape;
    int64_t N;
    DType wdtype;
    bool bias;
};

std::string describe(const LinearCase& c) {
    return cat("x", shape_str(c.x_shape), " N=", c.N, " ", dtype_name(c.wdtype), c.bias ? " +bias" : "");
}

class Linear : public BackendCaseTest<LinearCase> {};

TEST_P(Linear, MatchesDoubleReference) {
    const LinearCase c = the_case();
    const int64_t K = c.x_shape.back();
    const Tensor x = random_host(c.x_shape), b = random_host({c.N});
    const Tensor w32 = random_host({c.N, K});
    Tensor w = Tensor::empty(w32.shape(), c.wdtype);  // bf16 values: every dtype holds them exactly
    convert_from_f32(w32.data<float>(), c.wdtype, w.raw(), static_cast<size_t>(w32.numel()));
    const Tensor y = be().linear(dev(x), be().linear_weight(QTensor(w)), c.bias ? dev(b) : Tensor());
    Shape want_shape = c.x_shape;
    want_shape.back() = c.N;
    EXPECT_EQ(y.shape(), want_shape);
    EXPECT_EQ(y.dtype(), be().act_dtype());
    expect_close(y, linear_ref(x, w, c.bias ? b : Tensor()), tol(1e-5), describe(c));
}

VIDI_BACKEND_CASE_SUITE(
    Linear, ::testing::Values(
                LinearCase{{7, 65}, 33, DType::f32, true}, LinearCase{{1, 8}, 10, DType::f32, false},
                LinearCase{{1, 300}, 257, DType::bf16, true},     // the CPU's fused single-row path
                LinearCase{{4, 129}, 31, DType::bf16, false},     // fused, several rows
                LinearCase{{3, 64}, 40, DType::f16, true},        // fused, f16
                LinearCase{{37, 8192}, 300, DType::bf16, true},   // blocked: several tasks of converted tiles
                LinearCase{{19, 100}, 70, DType::f16, false},     // blocked, one partial block
                LinearCase{{1, 8}, 1, DType::bf16, false}, LinearCase{{7, 64}, 33, DType::bf16, true},
                LinearCase{{128, 512}, 256, DType::bf16, false}, LinearCase{{300, 1152}, 520, DType::bf16, true},
                LinearCase{{5, 67}, 17, DType::bf16, false},  // odd K: 2-byte aligned rows on a GPU
                LinearCase{{5, 67}, 17, DType::bf16, true}, LinearCase{{2, 3, 96}, 40, DType::bf16, true},
                LinearCase{{2, 3, 16}, 5, DType::bf16, false},  // leading dimensions kept
                LinearCase{{1, 3584}, 1024, DType::bf16, false},
                LinearCase{{4, 520}, 333, DType::bf16, true},  // a GPU's GEMV at its most rows
                LinearCase{{3, 1, 64}, 5, DType::bf16, false}, LinearCase{{2048, 256}, 1024, DType::bf16, true}));

class LinearOps : public BackendTest {
protected:
    // A linear weight as the backend holds it: float, or quantised on the host first.
    QTensor weight_as(const Tensor& host_w, int bits) const {
        if (bits == 16) return be().linear_weight(QTensor(host_w));
        QuantFormat f;
        f.bits = bits;
        f.group = bits == 8 ? 0 : 64;
        return be().linear_weight(vidi::quantize(host_w, f));
    }
};

TEST_P(LinearOps, ShapeMismatchesAreErrors) {
    const Tensor x = dev(random_host({3, 8}));
    EXPECT_THROW(be().linear(x, be().linear_weight(QTensor(random_host({4, 9})))), Error);
    EXPECT_THROW(be().linear(x, be().linear_weight(QTensor(random_host({4, 8}))), dev(random_host({5}))), Error);
}

TEST(LinearOnTheCpu, ActivationsMustBeF32) {
    Backend& be = shared_backend(BackendKind::cpu);
    EXPECT_THROW(be.linear(random_tensor({2, 16}, DType::bf16, 4), random_tensor({5, 16}, DType::bf16, 5)), Error);
}

TEST_P(LinearOps, LinearGeluAndLinearAddMatchTheReference) {
    const int64_t N = 200, K = 256;
    for (int64_t M : {1, 3, 64, 300})  // few rows: a GPU's GEMV and the separate ops; more: the GEMM's epilogue
        for (bool with_bias : {true, false}) {
            const Tensor xh = random_host({M, K}, -2.0f, 2.0f), wh = random_host({N, K}, -0.2f, 0.2f),
                         bh = random_host({N}), y0 = random_host({M, N});
            const Tensor x = dev(xh), b = with_bias ? dev(bh) : Tensor();
            const QTensor w = be().linear_weight(QTensor(wh));
            const std::vector<double> lin = linear_ref(xh, wh, with_bias ? bh : Tensor());
            const std::string what = cat(" M=", M, with_bias ? " with bias" : " without bias");
            for (Gelu kind : {Gelu::tanh, Gelu::erf}) {  // erf: no such epilogue, the separate ops
                std::vector<double> ref = lin;
                for (double& v : ref) v = kind == Gelu::tanh ? gelu_tanh_ref(v) : gelu_erf_ref(v);
                expect_close(be().linear_gelu(x, w, b, kind), ref, tol(1e-5),
                             cat("linear_gelu ", kind == Gelu::tanh ? "tanh" : "erf", what));
            }
            Tensor y = dev(y0);
            be().linear_add_(y, x, w, b);
            std::vector<double> ref = values(y0);
            for (size_t i = 0; i < ref.size(); ++i) ref[i] += lin[i];
            expect_close(y, ref, tol(1e-5), "linear_add_" + what);
        }
    Tensor small = be().act({4, 8});
    EXPECT_THROW(be().linear_add_(small, dev(random_host({64, 32})), be().linear_weight(QTensor(random_host({8, 32})))),
                 Error);
}

TEST_P(LinearOps, LinearGluEqualsGluOfTwoLinears) {
    for (Glu kind : {Glu::gelu_tanh, Glu::silu})
        for (int bits : {16, 8, 4})
            for (int64_t M : {1, 3, 4, 20}) {  // 20 rows: past a GPU's GEMV, the separate ops
                const int64_t N = 300, K = 512;
                const Tensor x = dev(random_host({M, K}));
                const QTensor gate = weight_as(random_host({N, K}), bits), up = weight_as(random_host({N, K}), bits);
                const Tensor fused = be().linear_glu(x, gate, up, kind);
                const Tensor apart = be().glu(be().linear(x, gate), be().linear(x, up), kind);
                expect_equal(fused, held(apart),
                             cat("linear_glu ", kind == Glu::silu ? "silu" : "gelu_tanh", " bits=", bits, " M=", M));
            }
}

TEST_P(LinearOps, LinearIntoEqualsLinearsWrittenIntoViews) {
    const int64_t K = 512, Nq = 256, Nkv = 128;
    for (int bits : {16, 8, 4})
        for (int64_t M : {1, 3, 20}) {  // 20 rows: past a GPU's GEMV, one linear() and copy_ each
            const Tensor x = dev(random_host({M, K}));
            const QTensor wq = weight_as(random_host({Nq, K}), bits), wk = weight_as(random_host({Nkv, K}), bits),
                          wv = weight_as(random_host({Nkv, K}), bits);
            // k and v land in rows 5.. of caches whose other rows must stay as they were.
            const Tensor cache_init = random_host({M + 9, Nkv});
            Tensor q = be().act({M, Nq}), kc = dev(cache_init), vc = dev(cache_init);
            Tensor k = kc.rows(5, 5 + M), v = vc.rows(5, 5 + M);
            be().linear_into_({&q, &k, &v}, x, {&wq, &wk, &wv});
            const std::string what = cat("linear_into_ bits=", bits, " M=", M);
            expect_equal(q, held(be().linear(x, wq)), what + " q");
            for (auto [cache, w] : {std::pair{&kc, &wk}, std::pair{&vc, &wv}}) {
                std::vector<double> want = values(cache_init);
                const std::vector<double> rows = held(be().linear(x, *w));
                std::copy(rows.begin(), rows.end(), want.begin() + 5 * Nkv);
                expect_equal(*cache, want, what + " cache");
            }
        }
    Tensor q = be().act({1, 8});
    Tensor k = be().act({1, 16});
    const QTensor w = be().linear_weight(QTensor(random_host({16, 64})));
    EXPECT_THROW(be().linear_into_({&q}, dev(random_host({1, 64})), {&w}), Error);          // output too small
    EXPECT_THROW(be().linear_into_({&q, &k}, dev(random_host({1, 64})), {&w}), Error);      // 2 outputs, 1 weight
}

}  // namespace

VIDI_BACKEND_SUITE(LinearOps);
