// FP8 matrix work of the encode (--compute fp8): rows of 16-bit values to E4M3 codes with
// per-row scales, bit for bit as the host's conversion of x / (amax / 448); the FP8 GEMM
// against a double reference of the 16-bit operands (an FP8 error, so larger than the 16-bit
// GEMM's, and bounded); and where it applies: only inside an encode scope, with FP8 on, for
// 64 rows or more; a weight's kept FP8 copy gives the bits of its conversion at each call; a
// tower's LayerNorm written straight as the FP8 input of the linears that read it.
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "backend/cuda/kernels.h"
#include "backend/cuda/op_checks.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaFp8 : public CudaDtypes {
protected:
    void SetUp() override {
        CudaDtypes::SetUp();
        if (!backend().fp8_supported()) GTEST_SKIP() << "no FP8 tensor cores on this GPU (compute capability < 8.9)";
    }
    void TearDown() override {
        backend().set_fp8_encode(false);
        CudaDtypes::TearDown();
    }
};

// x [M, K] (device, the activation dtype) to E4M3 codes and row scales: quantize_rows_e4m3, or
// with `up` glu_rows_e4m3 of x as the gate (GeGLU).
std::pair<Tensor, Tensor> rows_to_e4m3(CudaBackend& be, const Tensor& x, const Tensor* up = nullptr) {
    const int64_t M = x.dim(0), K = x.dim(1);
    Tensor codes = be.empty({M, K}, DType::u8), scales = be.empty({M}, DType::f32);
    auto* c = static_cast<uint8_t*>(codes.raw());
    auto* s = static_cast<float*>(scales.raw());
    // On the backend's stream, which wrote x (and up) and copies the results back: the default
    // stream does not order against it (a non-blocking stream), and a launch there raced both.
    with_type(be.act_dtype(), [&]<class T>() {
        if (up)
            glu_rows_e4m3(c, s, static_cast<const T*>(x.raw()), static_cast<const T*>(up->raw()), M, K, false,
                          be.stream());
        else
            quantize_rows_e4m3(c, s, static_cast<const T*>(x.raw()), M, K, be.stream());
    });
    return {be.to_host(codes), be.to_host(scales)};
}

TEST_P(CudaFp8, RowsBecomeE4m3CodesAndTheirScalesAsTheHostComputesThem) {
    // 1000: whole 16-byte vectors, K not a multiple of the block's; 1003: element by element;
    // 50000: a row longer than the kernel parks in shared memory.
    for (const int64_t K : {int64_t(1000), int64_t(1003), int64_t(50000)}) {
    SCOPED_TRACE("K = " + std::to_string(K));
    CudaBackend& be = backend();
    const int64_t M = 5;
    Tensor host = random_host({M, K});
    float* h = host.data<float>();
    for (int64_t k = 0; k < K; ++k) h[2 * K + k] = 0.0f;              // a row of zeros: scale 1
    for (int64_t k = 0; k < K; ++k) h[3 * K + k] *= 1000.0f;          // large values
    h[4 * K + 7] = 30.0f;                                              // one outlier
    const Tensor x = dev(host);
    const std::vector<double> xv = values(be.to_host(x));  // as the device holds them
    const auto [c, s] = rows_to_e4m3(be, x);
    for (int64_t m = 0; m < M; ++m) {
        float amax = 0.0f;
        for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(static_cast<float>(xv[m * K + k])));
        const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
        ASSERT_EQ(s.data<float>()[m], scale) << "row " << m;
        int differ = 0;
        for (int64_t k = 0; k < K; ++k) {
            const __nv_fp8_storage_t want =
                __nv_cvt_float_to_fp8(static_cast<float>(xv[m * K + k]) / scale, __NV_SATFINITE, __NV_E4M3);
            differ += c.data<uint8_t>()[m * K + k] != want;
        }
        EXPECT_EQ(differ, 0) << "row " << m;
    }
    }
}

TEST_P(CudaFp8, GatedRowsBecomeTheCodesOfTheirGluAsStored) {
    // glu_rows_e4m3(gate, up) converts act(gate) ⊙ up as glu() stores it (rounded to 16 bits):
    // the codes and scales of quantize_rows_e4m3 over glu()'s output, bit for bit.
    CudaBackend& be = backend();
    for (const int64_t K : {int64_t(4304), int64_t(1003), int64_t(50000)}) {
        SCOPED_TRACE("K = " + std::to_string(K));
        const Tensor gate = dev(random_host({3, K})), up = dev(random_host({3, K}));
        const auto [want_codes, want_scales] = rows_to_e4m3(be, be.glu(gate, up, Glu::gelu_tanh));
        const auto [codes, scales] = rows_to_e4m3(be, gate, &up);
        expect_same_bits(host_values(scales), host_values(want_scales), "scales");
        EXPECT_EQ(std::memcmp(codes.raw(), want_codes.raw(), codes.nbytes()), 0) << "codes differ";
    }
}

TEST_P(CudaFp8, AnEncodesGatedMlpAndPairedLinearsGiveTheBitsOfTheirSteps) {
    // glu_mlp's FP8 path (the gated activation converted as it is computed) and linear_into_'s
    // (x converted once for k and v) give what their steps one at a time give, in and out of
    // an FP8 encode; the 16-bit path too.
    CudaBackend& be = backend();
    const int64_t M = 160, D = 256, I = 512;
    const Tensor x = dev(random_host({M, D}));
    const QTensor gate = be.linear_weight(QTensor(random_host({I, D}))), up = be.linear_weight(QTensor(random_host({I, D})));
    const QTensor down = be.linear_weight(QTensor(random_host({D, I})));
    const QTensor k = be.linear_weight(QTensor(random_host({128, D}))), v = be.linear_weight(QTensor(random_host({64, D})));
    for (const bool fp8 : {false, true}) {
        SCOPED_TRACE(fp8 ? "FP8 encode" : "16-bit");
        be.set_fp8_encode(fp8);
        const EncodeScope encode = be.encode_scope();
        for (const Glu kind : {Glu::gelu_tanh, Glu::silu}) {
            const Tensor steps = be.linear(be.linear_glu(x, gate, up, kind), down);
            expect_same_bits(host_values(be.glu_mlp(x, gate, up, down, kind)), host_values(steps), "glu_mlp");
        }
        Tensor ko = be.act({M, 128}), vo = be.act({M, 64});
        be.linear_into_({&ko, &vo}, x, {&k, &v});
        expect_same_bits(host_values(ko), host_values(be.linear(x, k)), "k");
        expect_same_bits(host_values(vo), host_values(be.linear(x, v)), "v");
    }
    // The FP8 path was taken: it differs from the 16-bit products.
    be.set_fp8_encode(true);
    const Tensor f8 = [&] { const EncodeScope e = be.encode_scope(); return be.glu_mlp(x, gate, up, down, Glu::silu); }();
    be.set_fp8_encode(false);
    EXPECT_NE(host_values(f8), host_values(be.glu_mlp(x, gate, up, down, Glu::silu)));
}

TEST_P(CudaFp8, LinearInAnEncodeIsFp8AndCloseToTheReference) {
    CudaBackend& be = backend();
    const int64_t M = 300, K = 512, N = 384;
    const Tensor xh = random_host({M, K}), wh = random_host({N, K}), bh = random_host({N});
    const Tensor x = dev(xh), b = dev(bh);
    const QTensor w = be.linear_weight(QTensor(wh));
    const std::vector<double> ref = vidi::test::linear_ref(xh, wh, bh);
    const Tensor plain = be.linear(x, w, b);
    const double e16 = expect_close(plain, ref, 4 * tol(), "16-bit linear");

    be.set_fp8_encode(true);
    // Outside an encode FP8 does not apply: the 16-bit bits.
    expect_same_bits(host_values(be.linear(x, w, b)), host_values(plain), "outside an encode");
    const EncodeScope encode = be.encode_scope();
    const Tensor y = be.linear(x, w, b);
    // E4M3 keeps 3 fraction bits (a value's rounding up to 2^-4 relative): products of
    // K = 512 random terms land within a few percent; 16-bit operands within 1e-2.
    const double e8 = expect_close(y, ref, 5e-2, "FP8 linear");
    EXPECT_GT(e8, 4 * e16) << "the FP8 path was not taken";
    std::printf("  %s: linear rel error FP8 %.3e, 16-bit %.3e\n", dtype_name(act()), e8, e16);

    // Its epilogues: GELU (tanh form) and accumulation into y.
    const Tensor g = be.linear_gelu(x, w, b, Gelu::tanh);
    std::vector<double> gref(ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
        const double v = ref[i];
        gref[i] = 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
    expect_close(g, gref, 5e-2, "FP8 linear_gelu");
    Tensor acc = be.linear(x, w, b);
    be.linear_add_(acc, x, w, b);
    std::vector<double> twice(ref.size());
    for (size_t i = 0; i < ref.size(); ++i) twice[i] = 2 * ref[i];
    expect_close(acc, twice, 5e-2, "FP8 linear_add_");

    // Few rows keep the 16-bit GEMM even inside an encode.
    const Tensor few = be.linear(x.rows(0, 32), w, b);
    expect_same_bits(host_values(few), host_values(plain.rows(0, 32)), "32 rows inside an encode");
}

TEST_P(CudaFp8, AKeptCopyGivesTheBitsOfTheConversionAtEachCall) {
    // keep_fp8_copy() converts the weight once, as each call would: the same codes and scales,
    // so the same GEMM and the same bits. An MLP's gate and up share one conversion of x.
    CudaBackend& be = backend();
    const int64_t M = 200, K = 256, N = 512;
    const Tensor x = dev(random_host({M, K}));
    const QTensor gate = be.linear_weight(QTensor(random_host({N, K}))), up = be.linear_weight(QTensor(random_host({N, K})));
    be.set_fp8_encode(true);
    const EncodeScope encode = be.encode_scope();
    const Tensor converted = be.linear(x, gate), converted_up = be.linear(x, up);
    const Tensor glu = be.linear_glu(x, gate, up, Glu::gelu_tanh);
    expect_same_bits(host_values(glu), host_values(be.glu(converted, converted_up, Glu::gelu_tanh)),
                     "linear_glu against glu of two FP8 linears");

    const size_t before = be.fp8_copy_bytes();
    EXPECT_EQ(be.keep_fp8_copy(gate), size_t(N * K + 4 * N));
    EXPECT_EQ(be.keep_fp8_copy(gate), 0u) << "kept twice";
    EXPECT_EQ(be.keep_fp8_copy(up), size_t(N * K + 4 * N));
    EXPECT_EQ(be.fp8_copy_bytes(), before + 2 * size_t(N * K + 4 * N));
    expect_same_bits(host_values(be.linear(x, gate)), host_values(converted), "linear over the kept copy");
    expect_same_bits(host_values(be.linear_glu(x, gate, up, Glu::gelu_tanh)), host_values(glu),
                     "linear_glu over the kept copies");
    // The copies are what the FP8 GEMMs read: with the 16-bit values changed in place (weights
    // never are) the products stay the kept ones.
    Tensor g16 = gate.values, u16 = up.values;
    be.copy_(g16, dev(random_host({N, K})));
    be.copy_(u16, dev(random_host({N, K})));
    expect_same_bits(host_values(be.linear(x, gate)), host_values(converted), "linear reads the kept copy");
    expect_same_bits(host_values(be.linear_glu(x, gate, up, Glu::gelu_tanh)), host_values(glu),
                     "linear_glu reads the kept copies");

    // What FP8 does not take is not kept: quantised weights, rows it cannot multiply.
    EXPECT_EQ(be.keep_fp8_copy(be.quantized_weight(random_host({N, K}), QuantFormat{8, 0})), 0u);
    EXPECT_EQ(be.keep_fp8_copy(be.linear_weight(QTensor(random_host({N, 40})))), 0u) << "K not a multiple of 16";
    EXPECT_EQ(be.keep_fp8_copy(be.linear_weight(QTensor(random_host({12, K})))), 0u) << "N not a multiple of 8";
}

TEST_P(CudaFp8, LayerNormRowsBecomeTheCodesOfTheNormAsStored) {
    // layer_norm_e4m3 converts each row as layer_norm stores it (rounded to 16 bits): the codes
    // and scales of quantize_rows_e4m3 over layer_norm's output, bit for bit. 1152 and 1280: the
    // towers' widths (6 and 5 vectors a lane); 48: tiny-a's vision tower.
    CudaBackend& be = backend();
    for (const int64_t D : {int64_t(1152), int64_t(1280), int64_t(48)}) {
        SCOPED_TRACE("D = " + std::to_string(D));
        const int64_t M = 37;  // not a multiple of the kernel's 8 rows a block
        Tensor host = random_host({M, D});
        float* h = host.data<float>();
        for (int64_t k = 0; k < D; ++k) h[3 * D + k] *= 1000.0f;  // large values
        h[5 * D + 7] = 300.0f;                                    // one outlier
        for (int64_t k = 0; k < D; ++k) h[6 * D + k] = 0.25f;     // a constant row: norm 0, the bias stays
        const Tensor x = dev(host), w = dev(random_host({D})), b = dev(random_host({D}));
        const auto [want_codes, want_scales] = rows_to_e4m3(be, be.layer_norm(x, w, b, 1e-6f));
        Tensor codes = be.empty({M, D}, DType::u8), scales = be.empty({M}, DType::f32);
        with_type(be.act_dtype(), [&]<class T>() {
            layer_norm_e4m3(static_cast<uint8_t*>(codes.raw()), static_cast<float*>(scales.raw()),
                            static_cast<const T*>(x.raw()), static_cast<const T*>(w.raw()),
                            static_cast<const T*>(b.raw()), M, D, 1e-6f, be.stream());
        });
        expect_same_bits(host_values(be.to_host(scales)), host_values(want_scales), "scales");
        const Tensor got = be.to_host(codes);
        EXPECT_EQ(std::memcmp(got.raw(), want_codes.raw(), got.nbytes()), 0) << "codes differ";
    }
}

TEST_P(CudaFp8, NormedLinearsInFp8GiveTheBitsOfTheirStepsAndStayClose) {
    // layer_norm_linears with FP8 on: q/k/v-like linears (one without a bias) and fc1 with
    // either GELU give the bits of layer_norm, then the FP8 linear of the stored norm (which
    // converts it to the same codes); they differ from the 16-bit products by an FP8 error.
    // With FP8 off, or for fewer than 64 rows, the 16-bit steps' bits.
    CudaBackend& be = backend();
    const int64_t M = 200, D = 1152, I = 512;
    const Tensor x = dev(random_host({M, D})), lw = dev(random_host({D})), lb = dev(random_host({D}));
    const QTensor q = be.linear_weight(QTensor(random_host({D, D})));
    const QTensor k = be.linear_weight(QTensor(random_host({64, D})));
    const QTensor fc1 = be.linear_weight(QTensor(random_host({I, D})));
    const Tensor qb = dev(random_host({D})), fb = dev(random_host({I}));
    const std::vector<NormedLinear> linears = {{q, qb}, {k, {}}, {fc1, fb, Gelu::tanh}, {fc1, fb, Gelu::erf}};
    const auto steps = [&](const Tensor& rows_of_x, bool in_encode) {
        const auto run = [&] {
            const Tensor h = be.layer_norm(rows_of_x, lw, lb, 1e-6f);
            Tensor erf = be.linear(h, fc1, fb);
            be.gelu_(erf, Gelu::erf);
            return std::vector<Tensor>{be.linear(h, q, qb), be.linear(h, k), be.linear_gelu(h, fc1, fb, Gelu::tanh),
                                       erf};
        };
        if (!in_encode) return run();
        const EncodeScope encode = be.encode_scope();  // the FP8 linears of 16-bit inputs
        return run();
    };
    const char* names[] = {"q", "k (no bias)", "fc1, GELU tanh", "fc1, GELU erf"};
    const std::vector<Tensor> plain = steps(x, false);
    const std::vector<Tensor> off = be.layer_norm_linears(x, lw, lb, 1e-6f, linears);
    for (size_t i = 0; i < plain.size(); ++i) expect_same_bits(host_values(off[i]), host_values(plain[i]), names[i]);

    be.set_fp8_encode(true);
    const std::vector<Tensor> fp8 = be.layer_norm_linears(x, lw, lb, 1e-6f, linears);
    const std::vector<Tensor> fp8_steps = steps(x, true);
    for (size_t i = 0; i < fp8.size(); ++i) {
        SCOPED_TRACE(names[i]);
        expect_same_bits(host_values(fp8[i]), host_values(fp8_steps[i]), "FP8 against its steps");
        const std::vector<float> p = host_values(plain[i]);
        const double e = expect_close(fp8[i], std::vector<double>(p.begin(), p.end()), 6e-2, "FP8 against 16-bit");
        EXPECT_GT(e, 1e-2) << "the FP8 path was not taken";
    }
    // Few rows: the 16-bit steps.
    const Tensor few = x.rows(0, 32);
    const std::vector<Tensor> few_fp8 = be.layer_norm_linears(few, lw, lb, 1e-6f, linears);
    be.set_fp8_encode(false);
    const std::vector<Tensor> few_plain = steps(few, false);
    for (size_t i = 0; i < few_plain.size(); ++i)
        expect_same_bits(host_values(few_fp8[i]), host_values(few_plain[i]), "32 rows");
}

TEST_P(CudaFp8, JoinedQkvCopiesRunATowersAttentionAsOneGemm) {
    // keep_fp8_copies_joined keeps q, k and v's copies in one block (each weight's copy its rows
    // of it, the bytes keep_fp8_copy would take, plus their biases): layer_norm_attention then
    // runs one GEMM and the flash kernel reads q, k and v where it wrote them. SigLIP's head
    // dim 72 (k with a bias) and Whisper's 64 (k without). Against the same op through
    // layer_norm_linears and attention_batch over those copies (three GEMMs: an H100 gave the
    // same bits, 2026-12-07); with FP8 off, or for fewer than 64 rows, the 16-bit steps' bits.
    // (How far FP8 moves these random operands' attention from 16 bits is no bound worth
    // holding: their scores are large, the softmax peaked, and FP8's error in q and k moved the
    // outputs by 14-17% on that H100. FP8's closeness is held where it means something: the
    // normed linears above and the golden image tokens, Fp8Encode.*.)
    CudaBackend& be = backend();
    for (const int64_t hd : {int64_t(72), int64_t(64)}) {
        SCOPED_TRACE("head dim " + std::to_string(hd));
        const int64_t H = 2, C = H * hd, n = 3, T = 100;
        const Tensor x = dev(random_host({n * T, C})), lw = dev(random_host({C})), lb = dev(random_host({C}));
        std::vector<QTensor> w;
        for (int i = 0; i < 3; ++i) w.push_back(be.linear_weight(QTensor(random_host({C, C}))));
        const Tensor qb = dev(random_host({C})), vb = dev(random_host({C}));
        const Tensor kb = hd == 72 ? dev(random_host({C})) : Tensor();
        const std::array<NormedLinear, 3> qkv = {{{w[0], qb}, {w[1], kb}, {w[2], vb}}};
        AttentionParams p;
        p.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        const auto as_steps = [&](const Tensor& rows_of_x, int64_t sequences) {
            return be.Backend::layer_norm_attention(rows_of_x, lw, lb, 1e-6f, qkv, sequences, H, p);
        };
        const size_t before = be.fp8_copy_bytes();
        const size_t kept = be.keep_fp8_copies_joined(qkv);
        EXPECT_EQ(kept, size_t(3) * (C * C + 4 * C + 2 * C));
        EXPECT_EQ(be.fp8_copy_bytes() - before, kept);
        EXPECT_EQ(be.keep_fp8_copies_joined(qkv), 0u) << "kept twice";

        const std::vector<float> plain = host_values(as_steps(x, n));
        expect_same_bits(host_values(be.layer_norm_attention(x, lw, lb, 1e-6f, qkv, n, H, p)), plain, "FP8 off");
        be.set_fp8_encode(true);
        const Tensor joined = be.layer_norm_attention(x, lw, lb, 1e-6f, qkv, n, H, p);
        ASSERT_EQ(joined.shape(), (Shape{n * T, C}));
        const std::vector<float> steps = host_values(as_steps(x, n));
        const double e = expect_close(joined, std::vector<double>(steps.begin(), steps.end()), 2e-2,
                                      "one GEMM against three");
        std::printf("[ %s ] head dim %lld: joined q k v against three GEMMs, rel error %.3e\n", dtype_name(GetParam()),
                    static_cast<long long>(hd), e);
        EXPECT_NE(host_values(joined), plain) << "the FP8 path was not taken";
        // Fewer than 64 rows (one sequence of 50): the 16-bit steps.
        const Tensor few = x.rows(0, 50);
        const std::vector<float> few_joined = host_values(be.layer_norm_attention(few, lw, lb, 1e-6f, qkv, 1, H, p));
        be.set_fp8_encode(false);
        expect_same_bits(few_joined, host_values(as_steps(few, 1)), "50 rows");
    }
}

VIDI_CUDA_DTYPES(CudaFp8);

}  // namespace
}  // namespace vidi::cuda::test
