// The few-row GEMV (quant_gemv.cu, tensor cores) called directly, in either activation dtype:
// against a double reference over the very weights it multiplies (16-bit values, or
// T(code · scale) as dequantize_rows makes them), so only its f32 summation and the output's
// rounding separate them; M across one and two n-tiles (1, 3, 8, 9, 16), N = 200 (a partial
// tile of 16 rows), K of one chunk per lane at most (64) and of many (4096); bias, f32 output,
// the fused GLU. x rows past M hold NaN and y has a guard past its end: a fragment that
// mixed x rows, or a write past N, shows. Several outputs straddling tiles equal one launch
// each, and a row gets the same bits alone as among 16 rows.
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cuda/op_checks.h"
#include "core/quantize.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

using vidi::test::glu_ref;
using vidi::test::linear_ref;

class CudaGemv : public CudaDtypes {};

constexpr int64_t kN = 200, kMaxRows = 16, kGuard = 40;
constexpr float kSentinel = 512.0f;  // exact in every dtype

struct Format {
    int bits, group;  // group 0: per channel
};
const Format kFormats[] = {{16, 0}, {8, 0}, {8, 32}, {4, 32}, {4, 64}};

std::string name(const Format& f) { return f.bits == 16 ? "16-bit" : cat("int", f.bits, "/g", f.group); }

// A weight [N, K] in one format: on the device, its GEMV view, and the values the GEMV
// multiplies (the dequantised values rounded to the activation dtype) on the host.
struct Weight {
    QTensor dev;
    QuantView view;
    std::vector<double> values;
};

Weight make_weight(const Format& f, int64_t N, int64_t K) {
    const Tensor w = random_host({N, K});
    Weight out;
    if (f.bits == 16) {
        out.dev = backend().linear_weight(QTensor(w));
        out.view = float_gemv_view(out.dev.values.raw(), K);
        out.values = values(w);  // exact in either dtype
        return out;
    }
    QuantFormat q;
    q.bits = f.bits;
    q.group = f.group ? f.group : static_cast<int>(K);
    const QTensor host = vidi::quantize(w, q);
    out.dev = backend().linear_weight(host);
    out.view = QuantView{out.dev.values.raw(), static_cast<const float*>(out.dev.scales.raw()), f.bits, K, q.group};
    for (float v : dequantize(host).to_f32_vector()) out.values.push_back(round_act(v));
    return out;
}

// x[16, K] on the device whose rows from M on are NaN (the GEMV must not use them).
Tensor x_with_nan_rows(const Tensor& host, int64_t M) {
    Tensor h = host.clone();
    for (int64_t i = M * h.dim(1); i < h.numel(); ++i) h.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
    return dev(h);
}

// y of M·N elements (of `dtype`) and a guard after them, all kSentinel.
Tensor guarded_output(int64_t M, int64_t N, DType dtype) {
    const Tensor host = Tensor::from_vector(std::vector<float>(M * N + kGuard, kSentinel));
    if (dtype != DType::f32) return dev(host);
    Tensor y = backend().empty(host.shape(), DType::f32);  // upload() would give activations
    backend().copy_(y, dev(host));                           // (kSentinel is exact in either)
    return y;
}

// Calls quant_gemv<T> for the activation dtype.
void gemv(const Tensor& y, bool y_f32, const Tensor& x, const Weight& w, const Tensor& bias, int64_t M, int64_t N,
          const Weight* up = nullptr, bool silu = false) {
    with_type(act(), [&]<class T>() {
        quant_gemv<T>(y.raw(), y_f32, static_cast<const T*>(x.raw()), w.view,
                      bias.defined() ? static_cast<const T*>(bias.raw()) : nullptr, M, N, backend().stream(),
                      up ? &up->view : nullptr, silu);
    });
}

// The first M·N elements of y against ref; the guard after them untouched.
void expect_output(const Tensor& y, int64_t MN, const std::vector<double>& ref, double tol, const std::string& what) {
    expect_close(y.rows(0, MN), ref, tol, what);
    const std::vector<float> guard = backend().to_host(y.rows(MN, MN + kGuard)).to_f32_vector();
    for (float v : guard) ASSERT_EQ(v, kSentinel) << what << ": written past y";
}

// f32 summation of exact products over K ≤ 4096: far below the 16-bit outputs' rounding.
constexpr double kF32OutputTol = 1e-4;

TEST_P(CudaGemv, MatchesTheReferenceForEveryFormatAndShape) {
    for (int64_t K : {64, 4096})
        for (const Format& f : kFormats) {
            const Weight w = make_weight(f, kN, K);
            const Tensor xh = random_host({kMaxRows, K}, -2.0f, 2.0f), bh = random_host({kN});
            const Tensor b = dev(bh);
            const std::vector<double> xv = values(xh);
            for (int64_t M : {1, 3, 8, 9, 16}) {
                const Tensor x = x_with_nan_rows(xh, M);
                const std::vector<double> x_rows(xv.begin(), xv.begin() + M * K);
                const std::string what = cat(name(f), " M=", M, " K=", K);
                const std::vector<double> plain = linear_ref(x_rows, w.values, {}, K);
                const std::vector<double> biased = linear_ref(x_rows, w.values, values(bh), K);
                for (bool y_f32 : {false, true})
                    for (bool with_bias : {false, true}) {
                        const Tensor y = guarded_output(M, kN, y_f32 ? DType::f32 : act());
                        gemv(y, y_f32, x, w, with_bias ? b : Tensor(), M, kN);
                        expect_output(y, M * kN, with_bias ? biased : plain, y_f32 ? kF32OutputTol : tol(),
                                      cat(what, y_f32 ? " f32" : "", with_bias ? " +bias" : ""));
                    }
            }
        }
}

TEST_P(CudaGemv, FusedGluMatchesTheReference) {
    const int64_t K = 4096;
    for (const Format& f : kFormats) {
        const Weight gate = make_weight(f, kN, K), up = make_weight(f, kN, K);
        const Tensor xh = random_host({kMaxRows, K});
        const std::vector<double> xv = values(xh);
        for (int64_t M : {1, 9, 16})
            for (bool silu : {false, true}) {
                const std::vector<double> x_rows(xv.begin(), xv.begin() + M * K);
                const std::vector<double> g = linear_ref(x_rows, gate.values, {}, K),
                                          u = linear_ref(x_rows, up.values, {}, K);
                std::vector<double> ref(g.size());
                for (size_t i = 0; i < ref.size(); ++i)
                    ref[i] = glu_ref(round_act(static_cast<float>(g[i])), round_act(static_cast<float>(u[i])),
                                     silu ? Glu::silu : Glu::gelu_tanh);
                const Tensor y = guarded_output(M, kN, act());
                gemv(y, false, x_with_nan_rows(xh, M), gate, Tensor(), M, kN, &up, silu);
                expect_output(y, M * kN, ref, tol(), cat(name(f), silu ? " swiglu" : " geglu", " M=", M));
            }
    }
}

TEST_P(CudaGemv, SeveralOutputsEqualOneLaunchEach) {
    // Segments of 200, 40 and 24 rows: tiles straddle no segment, the last ones partial.
    const int64_t K = 512, M = 11;
    const int64_t Ns[] = {kN, 40, 24};
    const Tensor x = x_with_nan_rows(random_host({kMaxRows, K}), M);
    for (const Format& f : kFormats) {
        std::vector<Weight> ws;
        std::vector<Tensor> ys;
        GemvOutput outs[3];
        for (int i = 0; i < 3; ++i) {
            ws.push_back(make_weight(f, Ns[i], K));
            ys.push_back(guarded_output(M, Ns[i], act()));
        }
        for (int i = 0; i < 3; ++i) outs[i] = GemvOutput{ys[i].raw(), ws[i].view, Ns[i]};
        with_type(act(), [&]<class T>() {
            quant_gemv_many<T>(outs, 3, static_cast<const T*>(x.raw()), M, backend().stream());
        });
        for (int i = 0; i < 3; ++i) {
            const Tensor alone = guarded_output(M, Ns[i], act());
            gemv(alone, false, x, ws[i], Tensor(), M, Ns[i]);
            expect_equal(ys[i], values(backend().to_host(alone)), cat(name(f), " output ", i));
        }
    }
}

TEST_P(CudaGemv, ARowHasTheSameBitsAloneAndAmongSixteen) {
    const int64_t K = 4096;
    const Tensor x = dev(random_host({kMaxRows, K})), b = dev(random_host({kN}));
    for (const Format& f : kFormats) {
        const Weight w = make_weight(f, kN, K);
        for (bool y_f32 : {false, true}) {
            const DType yt = y_f32 ? DType::f32 : act();
            const Tensor all = guarded_output(kMaxRows, kN, yt);
            gemv(all, y_f32, x, w, b, kMaxRows, kN);
            const std::vector<float> batch = backend().to_host(all.rows(0, kMaxRows * kN)).to_f32_vector();
            for (int64_t r = 0; r < kMaxRows; ++r) {
                const Tensor one = guarded_output(1, kN, yt);
                gemv(one, y_f32, x.rows(r, r + 1), w, b, 1, kN);
                const std::vector<float> alone = backend().to_host(one.rows(0, kN)).to_f32_vector();
                EXPECT_EQ(std::memcmp(alone.data(), batch.data() + r * kN, kN * sizeof(float)), 0)
                    << name(f) << (y_f32 ? " f32" : "") << " row " << r;
            }
        }
    }
}

VIDI_CUDA_DTYPES(CudaGemv);

}  // namespace
}  // namespace vidi::cuda::test
