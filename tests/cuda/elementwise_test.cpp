// Element-wise and row-wise ops against double-precision references, on sizes that hit
// both the 16-byte vector path and the scalar tail, and on unaligned views.
#include <cmath>

#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaElementwise : public CudaDtypes {};
class CudaNorms : public CudaDtypes {};
class CudaRope : public CudaDtypes {};


const int64_t kSizes[] = {1, 7, 8, 1000, 4099, 196613};

// A device tensor of n random values that starts 2 bytes past a 16-byte boundary.
struct Unaligned {
    Tensor host, whole, view;
};
Unaligned unaligned(int64_t n) {
    Unaligned u;
    u.host = random_host({n + 1, 1}, -3.0f, 3.0f);
    u.whole = dev(u.host);
    u.view = u.whole.rows(1, n + 1).reshape({n});
    return u;
}

TEST_P(CudaElementwise, UnaryOps) {
    for (int64_t n : kSizes) {
        for (int variant = 0; variant < 4; ++variant) {
            const Tensor h = random_host({n}, -4.0f, 4.0f);
            std::vector<double> ref = as_doubles(h);
            Tensor x = dev(h);
            switch (variant) {
                case 0: backend().scale_(x, 0.37f); for (double& v : ref) v *= 0.37f; break;
                case 1: backend().gelu_(x, Gelu::tanh); for (double& v : ref) v = gelu_tanh(v); break;
                case 2: backend().gelu_(x, Gelu::erf); for (double& v : ref) v = gelu_erf(v); break;
                case 3: backend().softcap_(x, 2.5f); for (double& v : ref) v = 2.5 * std::tanh(v / 2.5); break;
            }
            expect_close(x, ref, tol(), cat("unary op ", variant, " n=", n));
        }
    }
}

TEST_P(CudaElementwise, UnaryOnUnalignedView) {
    Unaligned u = unaligned(1003);
    backend().gelu_(u.view, Gelu::tanh);
    std::vector<double> ref = as_doubles(u.host);
    for (size_t i = 1; i < ref.size(); ++i) ref[i] = gelu_tanh(ref[i]);
    expect_close(u.whole, ref, tol(), "gelu_ on an unaligned view");
}

TEST_P(CudaElementwise, AddAndGeglu) {
    for (int64_t n : kSizes) {
        const Tensor a = random_host({n}, -3.0f, 3.0f), b = random_host({n}, -3.0f, 3.0f);
        const std::vector<double> av = as_doubles(a), bv = as_doubles(b);
        Tensor x = dev(a);
        backend().add_(x, dev(b));
        std::vector<double> ref(av.size()), gref(av.size());
        for (size_t i = 0; i < av.size(); ++i) {
            ref[i] = av[i] + bv[i];
            gref[i] = gelu_tanh(av[i]) * bv[i];
        }
        expect_close(x, ref, tol(), cat("add_ n=", n));
        expect_close(backend().geglu(dev(a), dev(b)), gref, tol(), cat("geglu n=", n));
    }
    Unaligned u = unaligned(517);
    const Tensor y = random_host({517});
    backend().add_(u.view, dev(y));
    std::vector<double> ref = as_doubles(u.host);
    const std::vector<double> yv = as_doubles(y);
    for (size_t i = 0; i < yv.size(); ++i) ref[i + 1] += yv[i];
    expect_close(u.whole, ref, tol(), "add_ on an unaligned view");
    EXPECT_THROW(backend().add_(u.view, dev(random_host({516}))), Error);
}

TEST_P(CudaElementwise, AddBroadcast) {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{2, 3, 4, 16}, {1, 3, 1, 16}}, {{2, 3, 4, 16}, {16}},     {{5, 7, 9}, {5, 1, 9}},
        {{6, 10}, {1, 10}},             {{3, 4, 5, 24}, {3, 4, 5, 24}}, {{2, 5, 3, 40}, {2, 1, 3, 40}}};
    for (const auto& [xs, ys] : cases) {
        const Tensor xh = random_host(xs), yh = random_host(ys);
        Tensor x = dev(xh);
        backend().add_broadcast_(x, dev(yh));
        // Reference with both shapes right-aligned to rank 4.
        int64_t X[4] = {1, 1, 1, 1}, Y[4] = {1, 1, 1, 1};
        for (size_t i = 0; i < xs.size(); ++i) X[4 - xs.size() + i] = xs[i];
        for (size_t i = 0; i < ys.size(); ++i) Y[4 - ys.size() + i] = ys[i];
        std::vector<double> ref = as_doubles(xh);
        const std::vector<double> yv = as_doubles(yh);
        for (int64_t a = 0; a < X[0]; ++a)
            for (int64_t b = 0; b < X[1]; ++b)
                for (int64_t c = 0; c < X[2]; ++c)
                    for (int64_t d = 0; d < X[3]; ++d) {
                        const int64_t yi = (((Y[0] == 1 ? 0 : a) * Y[1] + (Y[1] == 1 ? 0 : b)) * Y[2] +
                                            (Y[2] == 1 ? 0 : c)) * Y[3] + d;
                        ref[((a * X[1] + b) * X[2] + c) * X[3] + d] += yv[yi];
                    }
        expect_close(x, ref, tol(), cat("add_broadcast_ ", shape_str(ys), " onto ", shape_str(xs)));
    }
    Tensor x = dev(random_host({2, 3, 8}));
    EXPECT_THROW(backend().add_broadcast_(x, dev(random_host({2, 8}))), Error);  // 2 vs 3
}

TEST_P(CudaNorms, RmsNormAllModes) {
    const std::vector<std::pair<int64_t, int64_t>> sizes = {{3, 3584}, {5, 1152}, {4, 100}, {1, 7}, {70, 256}};
    for (auto [rows, D] : sizes) {
        for (NormWeight mode : {NormWeight::none, NormWeight::plain, NormWeight::one_plus}) {
            const Tensor x = random_host({rows, D}, -4.0f, 4.0f), w = random_host({D}, -1.0f, 1.0f);
            const std::vector<double> xv = as_doubles(x), wv = as_doubles(w);
            std::vector<double> ref(xv.size());
            for (int64_t r = 0; r < rows; ++r) {
                double ss = 0;
                for (int64_t i = 0; i < D; ++i) ss += xv[r * D + i] * xv[r * D + i];
                const double inv = 1.0 / std::sqrt(ss / D + 1e-6);
                for (int64_t i = 0; i < D; ++i) {
                    const double g = mode == NormWeight::none ? 1.0 : mode == NormWeight::plain ? wv[i] : 1.0 + wv[i];
                    ref[r * D + i] = xv[r * D + i] * inv * g;
                }
            }
            const Tensor y = backend().rms_norm(dev(x), mode == NormWeight::none ? Tensor() : dev(w), 1e-6f, mode);
            expect_close(y, ref, tol(), cat("rms_norm rows=", rows, " D=", D, " mode=", int(mode)));
        }
    }
    EXPECT_THROW(backend().rms_norm(dev(random_host({2, 8})), dev(random_host({7})), 1e-6f, NormWeight::plain),
                 Error);
}

TEST_P(CudaNorms, LayerNormWithLargeMean) {
    const std::vector<std::pair<int64_t, int64_t>> sizes = {{3, 1152}, {4, 1280}, {2, 100}, {9, 3}};
    for (auto [rows, D] : sizes) {
        const Tensor x = random_host({rows, D}, 2.0f, 6.0f);  // mean far from 0: a one-pass variance would lose it
        const Tensor w = random_host({D}), b = random_host({D});
        const std::vector<double> xv = as_doubles(x), wv = as_doubles(w), bv = as_doubles(b);
        std::vector<double> ref(xv.size());
        for (int64_t r = 0; r < rows; ++r) {
            double mean = 0, var = 0;
            for (int64_t i = 0; i < D; ++i) mean += xv[r * D + i];
            mean /= D;
            for (int64_t i = 0; i < D; ++i) var += (xv[r * D + i] - mean) * (xv[r * D + i] - mean);
            const double inv = 1.0 / std::sqrt(var / D + 1e-6);
            for (int64_t i = 0; i < D; ++i) ref[r * D + i] = (xv[r * D + i] - mean) * inv * wv[i] + bv[i];
        }
        expect_close(backend().layer_norm(dev(x), dev(w), dev(b), 1e-6f), ref, tol(),
                     cat("layer_norm rows=", rows, " D=", D));
    }
}

TEST_P(CudaRope, RotateHalfAtOffsets) {
    struct Case {
        int64_t T, H, hd, pos0;
        double theta;
    };
    for (const Case c : {Case{13, 3, 64, 0, 10000.0}, Case{5, 2, 256, 5000, 10000.0}, Case{1, 16, 256, 77, 1e6},
                         Case{9, 4, 72, 3, 10000.0}}) {
        const Tensor h = random_host({c.T, c.H, c.hd});
        const std::vector<double> xv = as_doubles(h);
        std::vector<double> ref(xv.size());
        const int64_t half = c.hd / 2;
        for (int64_t t = 0; t < c.T; ++t)
            for (int64_t hh = 0; hh < c.H; ++hh)
                for (int64_t i = 0; i < half; ++i) {
                    const double ang = double(c.pos0 + t) * std::pow(c.theta, -2.0 * i / c.hd);
                    const int64_t base = (t * c.H + hh) * c.hd;
                    const double x1 = xv[base + i], x2 = xv[base + i + half];
                    ref[base + i] = x1 * std::cos(ang) - x2 * std::sin(ang);
                    ref[base + i + half] = x2 * std::cos(ang) + x1 * std::sin(ang);
                }
        Tensor x = dev(h);
        backend().rope_(x, c.pos0, c.theta);
        expect_close(x, ref, tol(), cat("rope T=", c.T, " hd=", c.hd, " pos0=", c.pos0));
    }
}

VIDI_CUDA_DTYPES(CudaElementwise);
VIDI_CUDA_DTYPES(CudaNorms);
VIDI_CUDA_DTYPES(CudaRope);

}  // namespace
}  // namespace vidi::cuda::test
