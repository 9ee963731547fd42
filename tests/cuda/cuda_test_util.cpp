#include "cuda_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

namespace vidi::cuda::test {

namespace {
DType g_act = DType::bf16;

CudaBackend& backend_of(DType act) {
    static std::unique_ptr<CudaBackend> be[2];
    std::unique_ptr<CudaBackend>& b = be[act == DType::f16 ? 1 : 0];
    if (!b) {
        b = std::make_unique<CudaBackend>(0, act);
        b->set_poison_new_tensors(true);
        std::fprintf(stderr, "[cuda tests] %s\n", b->name().c_str());
    }
    return *b;
}
}  // namespace

CudaBackend& backend() { return backend_of(g_act); }
DType act() { return g_act; }
void set_act(DType act) {
    VIDI_CHECK(act == DType::bf16 || act == DType::f16, "cuda tests: no backend computes in ", dtype_name(act));
    g_act = act;
}

std::mt19937& rng() {
    static std::mt19937 gen = [] {
        const unsigned seed = std::random_device{}();
        std::fprintf(stderr, "[cuda tests] random seed %u\n", seed);
        return std::mt19937(seed);
    }();
    return gen;
}

Tensor random_host(const Shape& shape, float lo, float hi) {
    Tensor t = Tensor::empty(shape, DType::f32);
    std::uniform_real_distribution<float> dist(lo, hi);
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = f16_to_f32(f32_to_f16(bf16_to_f32(f32_to_bf16(dist(rng())))));
    return t;
}

std::vector<double> as_doubles(const Tensor& host) {
    const std::vector<float> f = host.to_f32_vector();
    return std::vector<double>(f.begin(), f.end());
}

std::vector<double> linear_reference(const Tensor& x, const Tensor& w, const Tensor* b, int64_t M, int64_t N,
                                     int64_t K) {
    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    std::vector<double> y(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            double acc = b ? b->data<float>()[n] : 0.0;
            for (int64_t k = 0; k < K; ++k) acc += double(xp[m * K + k]) * wp[n * K + k];
            y[m * N + n] = acc;
        }
    return y;
}

Tensor dev(const Tensor& host) { return backend().upload(host); }

double expect_close(const Tensor& got, const std::vector<double>& ref, double tol, const std::string& what) {
    const Tensor host = backend().to_host(got);
    EXPECT_EQ(host.numel(), static_cast<int64_t>(ref.size())) << what;
    if (host.numel() != static_cast<int64_t>(ref.size())) return INFINITY;
    const float* g = host.data<float>();
    double diff = 0, norm = 0;
    int64_t bad = -1;
    for (size_t i = 0; i < ref.size(); ++i) {
        if (!std::isfinite(g[i]) && bad < 0) bad = static_cast<int64_t>(i);
        diff += (g[i] - ref[i]) * (g[i] - ref[i]);
        norm += ref[i] * ref[i];
    }
    EXPECT_LT(bad, 0) << what << ": element " << bad << " is " << (bad >= 0 ? g[bad] : 0.0f)
                      << " (unwritten or overflow)";
    const double rel = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
    EXPECT_LE(rel, tol) << what << ": relative error " << rel;
    return rel;
}

void expect_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what) {
    const Tensor host = backend().to_host(got);
    ASSERT_EQ(host.numel(), static_cast<int64_t>(ref.size())) << what;
    const float* g = host.data<float>();
    for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_EQ(static_cast<double>(g[i]), ref[i]) << what << ": element " << i;
}

std::vector<double> attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
    const float* qp = q.data<float>();
    const float* kp = k.data<float>();
    const float* vp = v.data<float>();
    const int64_t Tq = q.dim(0), H = q.dim(1), hd = q.dim(2), Tk = k.dim(0), KV = k.dim(1), G = H / KV;
    std::vector<double> out(static_cast<size_t>(Tq * H * hd), 0.0);
    std::vector<double> s(static_cast<size_t>(Tk));
    for (int64_t i = 0; i < Tq; ++i) {
        const int64_t pos = p.q_pos0 + i;
        for (int64_t h = 0; h < H; ++h) {
            const int64_t g = h / G;
            const float* qr = qp + (i * H + h) * hd;
            double mx = -INFINITY;
            for (int64_t j = 0; j < Tk; ++j) {
                const bool vis = (!p.causal || j <= pos) && (p.window <= 0 || pos - j <= p.window);
                if (!vis) {
                    s[j] = -INFINITY;
                    continue;
                }
                const float* kr = kp + (j * KV + g) * hd;
                double dot = 0;
                for (int64_t e = 0; e < hd; ++e) dot += double(qr[e]) * kr[e];
                dot *= p.scale;
                if (p.softcap > 0) dot = p.softcap * std::tanh(dot / p.softcap);
                s[j] = dot;
                mx = std::max(mx, dot);
            }
            if (mx == -INFINITY) continue;
            double sum = 0;
            double* o = out.data() + (i * H + h) * hd;
            for (int64_t j = 0; j < Tk; ++j) {
                if (s[j] == -INFINITY) continue;
                const double w = std::exp(s[j] - mx);
                sum += w;
                const float* vr = vp + (j * KV + g) * hd;
                for (int64_t e = 0; e < hd; ++e) o[e] += w * vr[e];
            }
            for (int64_t e = 0; e < hd; ++e) o[e] /= sum;
        }
    }
    return out;
}

}  // namespace vidi::cuda::test
