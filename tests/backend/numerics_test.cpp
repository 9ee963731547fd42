// What is f32 on every backend whatever its activation dtype (SPEC §9): the LM head's logits
// (Backend::logits: the product's f32 accumulator, soft-capped in f32, through every linear
// path: a GPU's GEMV, GEMM and quantised slabs, the CPU's fused rows) and the greedy pick over
// them; the positional MLPs (f32 weights and inputs; on a GPU a plain f32 GEMM without TF32)
// against a double reference; the weights a backend holds for a bf16 checkpoint.
#include <cmath>

#include "backend/backend_test.h"
#include "core/quantize.h"
#include "core/sinusoid.h"

using namespace vidi;
using namespace vidi::test;

namespace {

class Numerics : public BackendTest {};

std::vector<double> soft_capped(std::vector<double> y, double cap) {
    for (double& v : y) v = cap * std::tanh(v / cap);
    return y;
}

// f32 sums of exact products (16-bit inputs): the error grows like √K·2^-24, far below any
// 16-bit rounding (2^-9 bf16, 2^-12 f16), which an output rounded to the activation dtype
// would show.
constexpr double kF32Tol = 2e-6;

TEST_P(Numerics, LogitsAreSoftCappedInF32) {
    const Tensor x = dev(random_tensor({3, 64}, DType::f32, 12, -2.0f, 2.0f));
    const Tensor w = random_tensor({40, 64}, DType::bf16, 13);
    const QTensor wq = be().linear_weight(QTensor(w));
    for (float cap : {0.0f, 30.0f, 2.0f}) {
        const Tensor y = be().logits(x, wq, cap);
        EXPECT_EQ(y.dtype(), DType::f32);
        ASSERT_EQ(y.shape(), (Shape{3, 40}));
        // Against the values the backend holds (a GPU rounds x, and w in f16 mode).
        std::vector<double> ref = linear_ref(host(x), host(wq.values), {});
        if (cap > 0) ref = soft_capped(ref, cap);
        EXPECT_LT(rel_err(host(y), ref), gpu() ? kF32Tol : 1e-6) << "cap " << cap;
    }
    const QTensor q8 = be().quantized_weight(w, QuantFormat{8, 0});
    const Tensor y8 = be().logits(x, q8, 30.0f);
    EXPECT_EQ(y8.dtype(), DType::f32);
    EXPECT_LT(rel_err(host(y8), held(be().logits(x, wq, 30.0f))), 2e-2);
}

TEST_P(Numerics, LogitsAreF32FromEveryLinearPath) {
    const int64_t K = 512, N = 1000;
    const Tensor w = random_host({N, K}), all_x = random_host({20, K}, -2.0f, 2.0f);
    const QTensor float_w = be().linear_weight(QTensor(w));
    const QTensor q8 = be().linear_weight(vidi::quantize(w, QuantFormat{8, 0}));
    const Tensor w8 = dequantize(vidi::quantize(w, QuantFormat{8, 0}));
    // M = 1..4: a GPU's GEMV; 7: cuBLASLt; 20 rows int8: the dequantised slabs; 2 rows int8: the GEMV.
    for (int64_t M : {1, 4, 7}) {
        const Tensor x = all_x.rows(0, M).clone();
        const Tensor y = be().logits(dev(x), float_w, 30.0f);
        EXPECT_EQ(y.dtype(), DType::f32);
        EXPECT_EQ(y.shape(), (Shape{M, N}));
        expect_close(y, soft_capped(linear_ref(x, w), 30.0), kF32Tol, cat("logits M=", M));
        expect_close(be().logits(dev(x), float_w, 0.0f), linear_ref(x, w), kF32Tol, cat("logits without a cap, M=", M));
    }
    for (int64_t M : {2, 20}) {
        const Tensor x = all_x.rows(0, M).clone();
        const Tensor y = be().logits(dev(x), q8, 30.0f);
        EXPECT_EQ(y.dtype(), DType::f32);
        // A GPU multiplies weights dequantised to the activation dtype, in its GEMV (2 rows) as
        // in its slab path (20): exact for int8 codes only where code·scale fits the mantissa,
        // so its bound is that rounding of w.
        expect_close(y, soft_capped(linear_ref(x, w8), 30.0), !gpu() ? kF32Tol : tol(kF32Tol) / 4,
                     cat("int8 logits M=", M));
    }
    if (gpu()) {  // x must be activations (the CPU's are f32)
        EXPECT_THROW(be().logits(be().empty({1, K}, DType::f32), float_w, 30.0f), Error);
    }
}

TEST_P(Numerics, NearTiesThatBf16WouldMergeArePickedInF32) {
    // Row n of the head gives 20 + d_n before the 30·tanh soft-cap: d = 1/32 and 1/16 are one
    // bf16 step apart before the cap and merge into one bf16 value after it; f32 keeps them
    // apart, and the exact tie (rows 1 and 2) goes to the first index, as torch.argmax.
    const std::vector<float> head = {20.0f, 0.03125f, 20.0f, 0.0625f, 20.0f, 0.0625f, 19.875f, 0.0f};
    const Tensor x = dev(Tensor::from_vector(std::vector<float>{1.0f, 1.0f}, {1, 2}));
    for (int64_t pad : {0, 1000}) {  // a GPU's GEMV at N = 4, and a row long enough for the vector scan
        std::vector<float> rows = head;
        for (int64_t i = 0; i < 2 * pad; ++i) rows.push_back(i % 2 ? 0.0f : -1.0f);
        Tensor w = Tensor::empty({4 + pad, 2}, DType::bf16);
        convert_from_f32(rows.data(), DType::bf16, w.raw(), rows.size());
        const Tensor y = be().logits(x, be().linear_weight(QTensor(w)), 30.0f);
        const std::vector<float> v = host(y).to_f32_vector();
        ASSERT_EQ(v.size(), static_cast<size_t>(4 + pad));
        EXPECT_EQ(bf16_to_f32(f32_to_bf16(v[0])), bf16_to_f32(f32_to_bf16(v[1])));  // bf16 would see a tie
        EXPECT_GT(v[1], v[0]);
        EXPECT_EQ(v[1], v[2]);
        const TopPick p = be().top_picks(y)[0];
        EXPECT_EQ(p.id, 1) << "pad " << pad;
        EXPECT_EQ(p.margin, 0.0f) << "pad " << pad;  // rows 1 and 2 tie
        const TopPick first = top_pick(v.data(), 2);
        EXPECT_EQ(first.id, 1);
        EXPECT_EQ(first.margin, v[1] - v[0]);
    }
}

TEST_P(Numerics, TopPicksOverF32EqualTheHostScan) {
    for (int64_t N : {256000, 1001}) {
        Tensor h = Tensor::empty({3, N}, DType::f32);
        float* x = h.data<float>();
        std::uniform_real_distribution<float> dist(-30.0f, 30.0f);
        for (int64_t i = 0; i < h.numel(); ++i) x[i] = dist(rng());  // f32 values, no 16-bit rounding
        x[0 * N + 11] = 40.0f;
        x[0 * N + N - 2] = std::nextafter(40.0f, 50.0f);  // one f32 step above: a 16-bit type ties them
        x[1 * N + 3] = x[1 * N + 900] = 41.0f;            // an exact tie: the first index
        Tensor d = be().empty({3, N}, DType::f32);
        be().copy_(d, h);
        const std::vector<TopPick> got = be().top_picks(d);
        for (int64_t r = 0; r < 3; ++r) {
            const TopPick want = top_pick(x + r * N, N);
            EXPECT_EQ(got[r].id, want.id) << "N=" << N << " row " << r;
            EXPECT_EQ(got[r].margin, want.margin) << "N=" << N << " row " << r;
        }
        EXPECT_EQ(got[0].id, N - 2);
        EXPECT_EQ(got[1].id, 3);
        EXPECT_EQ(got[1].margin, 0.0f);
    }
}

// A host f32 tensor as a bf16 checkpoint stores it.
Tensor as_bf16(const Tensor& f) {
    Tensor t = Tensor::empty(f.shape(), DType::bf16);
    convert_from_f32(f.data<float>(), DType::bf16, t.raw(), static_cast<size_t>(f.numel()));
    return t;
}

TEST_P(Numerics, PositionalMlpInF32MatchesDouble) {
    // Linear -> GELU(erf) -> Linear with f32 weights on f32 inputs (model/common/positional.cpp),
    // then rounded to the activation dtype and normalised: the f32 part is held to f32 accuracy
    // (TF32 would give ~1e-3), the rest to the activation dtype's rounding.
    const int64_t D = 256;
    for (int64_t n : {3, 37}) {
        Tensor pe = Tensor::empty({n, D}, DType::f32);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t i = 0; i < D / 2; ++i) {
                const double a = double(r) * 997.0 / double(n) * std::exp(-2.0 * i * std::log(10000.0) / D);
                pe.data<float>()[r * D + 2 * i] = static_cast<float>(std::sin(a));
                pe.data<float>()[r * D + 2 * i + 1] = static_cast<float>(std::cos(a));
            }
        const Tensor w0 = random_host({D, D}, -0.1f, 0.1f), b0 = random_host({D}), w2 = random_host({D, D}, -0.1f, 0.1f),
                     b2 = random_host({D});
        // Checkpoint weights arrive as bf16; f32_weight() widens them exactly (a GPU), or keeps
        // them memory-mapped for ops that compute in f32 anyway (the CPU).
        const Tensor dw0 = be().f32_weight(as_bf16(w0)), db0 = be().f32_weight(as_bf16(b0)),
                     dw2 = be().f32_weight(as_bf16(w2)), db2 = be().f32_weight(as_bf16(b2));
        if (gpu()) {
            EXPECT_EQ(dw0.dtype(), DType::f32);
        }
        Tensor x = be().empty({n, D}, DType::f32);
        be().copy_(x, pe);
        Tensor h = be().linear(x, dw0, db0);
        EXPECT_EQ(h.dtype(), DType::f32);
        be().gelu_(h, Gelu::erf);
        h = be().linear(h, dw2, db2);
        EXPECT_EQ(h.dtype(), DType::f32);

        std::vector<double> ref = linear_ref(pe, w0, b0);
        for (double& v : ref) v = gelu_erf_ref(v);
        Tensor mid = Tensor::empty({n, D}, DType::f32);
        for (int64_t i = 0; i < mid.numel(); ++i) mid.data<float>()[i] = static_cast<float>(ref[i]);
        ref = linear_ref(mid, w2, b2);
        expect_close(h, ref, 1e-5, cat("positional MLP in f32, n=", n));

        Tensor a = be().act({n, D});
        be().copy_(a, h);  // `.to(x.dtype)`
        const Tensor y = be().rms_norm(a, Tensor(), 1e-5f, NormWeight::none);
        EXPECT_EQ(y.dtype(), act());
        expect_close(y, rms_norm_ref(ref, {}, D, 1e-5, NormWeight::none), tol(1e-5),
                     cat("positional encoding, n=", n));
    }
    if (gpu()) {  // f32 inputs need f32 weights (and the reverse): no silent mix of dtypes
        EXPECT_THROW(be().linear(be().empty({2, 8}, DType::f32), dev(random_host({4, 8}))), Error);
        EXPECT_THROW(be().linear(dev(random_host({2, 8})), be().f32_weight(random_host({4, 8}))), Error);
    }
}

// Backend::sinusoid against the host's double table (core/sinusoid.h): the CPU's is that table;
// a GPU's sin/cos in double may differ from glibc's in the last bits of a double, which
// changes an f32 only where it lies within that of a rounding boundary: at most one f32 step,
// in a few values of a million.
TEST_P(Numerics, SinusoidIsTheHostsDoubleTableRoundedToF32) {
    const int64_t dim = 3584;  // Vidi1.5's hidden size
    std::vector<double> positions = {0.0, 0.5, 1.0, 9999.0};
    for (int j = 0; j < 600; ++j) positions.push_back(j / 599.0 * 9999.0);  // a 10-minute video's frames
    const Tensor want = sinusoid_table(positions, dim);
    const Tensor got = host(be().sinusoid(positions, dim));
    ASSERT_EQ(got.dtype(), DType::f32);
    ASSERT_EQ(got.shape(), want.shape());
    int64_t differ = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
        const float a = got.data<float>()[i], b = want.data<float>()[i];
        if (a == b) continue;
        ++differ;
        ASSERT_TRUE(std::nextafter(b, a) == a) << "value " << i << ": " << a << " against " << b;
    }
    EXPECT_LE(differ, gpu() ? want.numel() / 100000 : 0) << differ << " of " << want.numel() << " values differ";
    EXPECT_EQ(host(be().sinusoid(positions, dim)).data<float>()[4 * dim + 1], 1.0f);  // cos(0)
    EXPECT_EQ(be().sinusoid({}, dim).shape(), (Shape{0, dim}));
    EXPECT_THROW(be().sinusoid(positions, 7), Error);  // an odd dimension has no sin/cos pairs
}

TEST_P(Numerics, WeightsAreTheCheckpointsValuesInTheActivationDtype) {
    // A bf16 checkpoint: as stored in bf16 mode; in fp16 mode rounded as `.half()` rounds
    // (past 65504: inf; below 6.1e-5: subnormal), and f32_weight() widens those values. The
    // CPU keeps the checkpoint's values as they are (memory-mapped).
    const std::vector<float> want_values = {1.0f, 3.140625f, -2.5e-5f, 1e-6f, 70000.0f, -0.0078125f};
    Tensor h = Tensor::empty({static_cast<int64_t>(want_values.size())}, DType::bf16);
    convert_from_f32(want_values.data(), DType::bf16, h.raw(), want_values.size());
    const std::vector<float> stored_values = h.to_f32_vector();
    const Tensor w = be().weight(h), w32 = be().f32_weight(h);
    if (gpu()) {
        EXPECT_EQ(w.dtype(), act());
        EXPECT_EQ(w32.dtype(), DType::f32);
    }
    const std::vector<float> got = host(w).to_f32_vector(), got32 = host(w32).to_f32_vector();
    for (size_t i = 0; i < want_values.size(); ++i) {
        const float want = round_act(stored_values[i]);
        EXPECT_EQ(got[i], want) << "value " << stored_values[i];
        EXPECT_EQ(got32[i], want) << "value " << stored_values[i];
    }
    if (act() == DType::f16) {
        EXPECT_TRUE(std::isinf(got[4]));
    }
}

VIDI_BACKEND_SUITE(Numerics);

}  // namespace
