// Which 4-bit layout for the media K/V? Fake-quantises keys and values in several layouts
// (quantise, then dequantise to f32) and measures what attention loses, on the CPU:
//   1. synthetic K/V of Gemma2-9B's head shape (8 KV heads of 256, 2 query heads each,
//      scale 1/16, soft-cap 50) without and with outlier channels (a few channels of the
//      keys with a large offset and spread, the queries large there too, as pre-RoPE keys of
//      trained decoders have); attention output relative error against f32 K/V, in double;
//   2. the golden tiny model: media K/V of its golden tokens, fake-quantised, teacher-forced
//      logits against the float64 reference and against the unquantised K/V.
// Usage: kv_quant_bench [GOLDEN_DIR]   (default ../shared/golden). Figures: bench/RESULTS.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/vidi15/gemma2.h"
#include "runtime/generate.h"

using namespace vidi;

namespace {

// How stored scales (and zero points) are rounded.
enum class ScaleType { f32, f16, bf16 };
float round_scale(float s, ScaleType t) {
    if (t == ScaleType::f16) return f16_to_f32(f32_to_f16(s));
    if (t == ScaleType::bf16) return bf16_to_f32(f32_to_bf16(s));
    return s;
}

// One way of quantising a [T, KV, hd] tensor to 4 bits: groups of `group` values that share a
// scale, either along the head dimension of one token (per token) or along the tokens of one
// channel (per channel, `group` tokens a block); symmetric (codes −8..7, the extreme at −8,
// the best of five scales as core/quantize.cpp) or asymmetric (min/max, codes 0..15).
struct Layout {
    bool per_channel = false;
    int group = 64;  // 0: not quantised
    bool asym = false;
    std::string name() const {
        if (group == 0) return "f32";
        return std::string(per_channel ? "chan/b" : "tok/g") + std::to_string(group) + (asym ? " asym" : " sym");
    }
};

// Fake-quantises the n values x[i·stride] in place.
void fake_quantize(float* x, int64_t n, int64_t stride, bool asym, ScaleType st) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = x[i * stride];
    auto apply = [&](float scale, float zero, float lo_code, float hi_code, bool write) {
        const float inv = scale != 0 ? 1.0f / scale : 0.0f;
        double err = 0;
        for (int64_t i = 0; i < n; ++i) {
            const float c = std::clamp(std::nearbyint((v[i] - zero) * inv), lo_code, hi_code);
            const float y = zero + c * scale;
            err += double(v[i] - y) * (v[i] - y);
            if (write) x[i * stride] = y;
        }
        return err;
    };
    if (asym) {
        const float lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
        const float scale = round_scale((hi - lo) / 15.0f, st), zero = round_scale(lo, st);
        apply(scale, zero, 0.0f, 15.0f, true);
        return;
    }
    float extreme = 0;
    for (float f : v)
        if (std::fabs(f) > std::fabs(extreme)) extreme = f;
    float best_scale = round_scale(extreme / -8.0f, st);
    double best = apply(best_scale, 0, -8, 7, false);
    for (float f : {0.96f, 0.92f, 0.88f, 0.84f}) {
        const float s = round_scale(f * extreme / -8.0f, st);
        if (const double e = apply(s, 0, -8, 7, false); e < best) best = e, best_scale = s;
    }
    apply(best_scale, 0, -8, 7, true);
}

// x [T, KV, hd] f32 (host) fake-quantised in `layout`.
void fake_quantize(Tensor& x, const Layout& layout, ScaleType st) {
    const int64_t T = x.dim(0), KV = x.dim(1), hd = x.dim(2);
    float* p = x.data<float>();
    if (layout.group == 0) return;
    if (!layout.per_channel) {
        const int64_t g = std::min<int64_t>(layout.group, hd);
        for (int64_t r = 0; r < T * KV; ++r)
            for (int64_t j = 0; j < hd; j += g) fake_quantize(p + r * hd + j, g, 1, layout.asym, st);
        return;
    }
    for (int64_t t0 = 0; t0 < T; t0 += layout.group)
        for (int64_t c = 0; c < KV * hd; ++c)
            fake_quantize(p + t0 * KV * hd + c, std::min<int64_t>(layout.group, T - t0), KV * hd, layout.asym, st);
}

struct Scheme {
    std::string name;
    Layout k, v;
    ScaleType st = ScaleType::f32;
    // Bytes per (token, KV head) of hd = 256 values for K and V together: codes and scales.
    double bytes_per_head(int64_t hd) const {
        auto side = [&](const Layout& l) {
            if (l.group == 0) return 4.0 * hd;
            const double scale_bytes = st == ScaleType::f32 ? 4 : 2, per = l.asym ? 2 : 1;
            const double scales = l.per_channel ? double(hd) / l.group : double(hd) / std::min<int64_t>(l.group, hd);
            return hd / 2.0 + scales * scale_bytes * per;
        };
        return side(k) + side(v);
    }
};

std::vector<Scheme> schemes() {
    std::vector<Scheme> s;
    auto tok = [](int g, bool asym) { return Layout{false, g, asym}; };
    auto chan = [](int b, bool asym) { return Layout{true, b, asym}; };
    for (int g : {32, 64, 128})
        for (bool asym : {false, true}) s.push_back({"K,V " + tok(g, asym).name(), tok(g, asym), tok(g, asym)});
    for (int b : {64, 128, 256})
        for (bool asym : {false, true})
            s.push_back({"K " + chan(b, asym).name() + ", V tok/g64 sym", chan(b, asym), tok(64, false)});
    s.push_back({"K chan/b128 asym, V tok/g32 sym", chan(128, true), tok(32, false)});
    s.push_back({"K chan/b128 asym only (V f32)", chan(128, true), Layout{false, 0, false}});
    s.push_back({"K tok/g64 sym only (V f32)", tok(64, false), Layout{false, 0, false}});
    s.push_back({"V tok/g64 sym only (K f32)", Layout{false, 0, false}, tok(64, false)});
    s.push_back({"V tok/g64 asym only (K f32)", Layout{false, 0, false}, tok(64, true)});
    s.push_back({"K chan/b128 asym, V tok/g64 asym", chan(128, true), tok(64, true)});
    // Scale precision, on two of the layouts.
    for (ScaleType st : {ScaleType::f16, ScaleType::bf16}) {
        const char* tag = st == ScaleType::f16 ? " [f16 scales]" : " [bf16 scales]";
        s.push_back({"K,V tok/g32 sym" + std::string(tag), tok(32, false), tok(32, false), st});
        s.push_back({"K,V tok/g64 sym" + std::string(tag), tok(64, false), tok(64, false), st});
        s.push_back({"K chan/b128 asym, V tok/g64 sym" + std::string(tag), chan(128, true), tok(64, false), st});
    }
    return s;
}

// --- 1. synthetic ----------------------------------------------------------------------

constexpr int64_t kKV = 8, kG = 2, kHd = 256, kTk = 4096, kTq = 16;
constexpr double kScale = 1.0 / 16, kCap = 50;

struct Synthetic {
    Tensor q, k, v;  // q [Tq, KV·G, hd], k/v [Tk, KV, hd]
};

// outliers: channels of the keys (and queries) with large offsets and spread.
Synthetic make_synthetic(bool outliers, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n01(0, 1);
    std::uniform_real_distribution<float> u01(0, 1);
    Synthetic s{Tensor::empty({kTq, kKV * kG, kHd}, DType::f32), Tensor::empty({kTk, kKV, kHd}, DType::f32),
                Tensor::empty({kTk, kKV, kHd}, DType::f32)};
    std::vector<float> mu(kKV * kHd), sigma(kKV * kHd), q_mu(kKV * kHd), v_sigma(kKV * kHd);
    for (int64_t c = 0; c < kKV * kHd; ++c) {
        const bool big = outliers && u01(rng) < 0.05f;  // ~13 channels of 256 per head
        const float sign = u01(rng) < 0.5f ? -1.0f : 1.0f;
        mu[c] = big ? sign * (5 + 10 * u01(rng)) : 0.3f * n01(rng);
        sigma[c] = big ? 2 + 3 * u01(rng) : 0.5f + u01(rng);
        q_mu[c] = big ? sign * (1 + 2 * u01(rng)) : 0.0f;
        v_sigma[c] = std::exp(0.5f * n01(rng));
    }
    float* k = s.k.data<float>();
    float* v = s.v.data<float>();
    for (int64_t t = 0; t < kTk; ++t) {
        const float tok = outliers ? std::exp(0.25f * n01(rng)) : 1.0f;  // tokens differ in magnitude
        for (int64_t c = 0; c < kKV * kHd; ++c) {
            k[t * kKV * kHd + c] = mu[c] + tok * sigma[c] * n01(rng);
            v[t * kKV * kHd + c] = v_sigma[c] * n01(rng) * (outliers && u01(rng) < 0.001f ? 8.0f : 1.0f);
        }
    }
    // Queries: the outlier channels' offsets plus noise, scaled so that a query's scores spread
    // with a standard deviation of 2.5 over the keys (a focused but not one-hot softmax).
    float* q = s.q.data<float>();
    for (int64_t i = 0; i < kTq; ++i)
        for (int64_t h = 0; h < kKV * kG; ++h) {
            const int64_t g = h / kG;
            float* qh = q + (i * kKV * kG + h) * kHd;
            for (int64_t d = 0; d < kHd; ++d) qh[d] = q_mu[g * kHd + d] + n01(rng);
            double sum = 0, sq = 0;
            for (int64_t t = 0; t < kTk; ++t) {
                double dot = 0;
                for (int64_t d = 0; d < kHd; ++d) dot += double(qh[d]) * k[(t * kKV + g) * kHd + d];
                dot *= kScale;
                sum += dot;
                sq += dot * dot;
            }
            const double sd = std::sqrt(std::max(1e-12, sq / kTk - (sum / kTk) * (sum / kTk)));
            for (int64_t d = 0; d < kHd; ++d) qh[d] = static_cast<float>(qh[d] * 2.5 / sd);
        }
    return s;
}

// out [Tq, H, hd] in double: softmax(softcap(scale · q·kᵀ)) · v, GQA.
std::vector<double> attend(const Tensor& q, const Tensor& k, const Tensor& v) {
    const int64_t Tq = q.dim(0), H = q.dim(1), hd = q.dim(2), Tk = k.dim(0), KV = k.dim(1), G = H / KV;
    std::vector<double> out(static_cast<size_t>(Tq * H * hd)), p(static_cast<size_t>(Tk));
    const float *qp = q.data<float>(), *kp = k.data<float>(), *vp = v.data<float>();
    for (int64_t i = 0; i < Tq; ++i)
        for (int64_t h = 0; h < H; ++h) {
            const float* qh = qp + (i * H + h) * hd;
            double mx = -1e300;
            for (int64_t t = 0; t < Tk; ++t) {
                double d = 0;
                for (int64_t e = 0; e < hd; ++e) d += double(qh[e]) * kp[(t * KV + h / G) * hd + e];
                p[t] = kCap * std::tanh(d * kScale / kCap);
                mx = std::max(mx, p[t]);
            }
            double sum = 0;
            for (int64_t t = 0; t < Tk; ++t) sum += (p[t] = std::exp(p[t] - mx));
            double* o = out.data() + (i * H + h) * hd;
            for (int64_t t = 0; t < Tk; ++t)
                for (int64_t e = 0; e < hd; ++e) o[e] += p[t] / sum * vp[(t * KV + h / G) * hd + e];
        }
    return out;
}

double rel(const std::vector<double>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return std::sqrt(num / den);
}

Tensor copy_of(const Tensor& t) {
    Tensor c = Tensor::empty(t.shape(), DType::f32);
    std::copy(t.data<float>(), t.data<float>() + t.numel(), c.data<float>());
    return c;
}

// --- 2. the golden tiny model -------------------------------------------------------------

std::vector<int32_t> ids_of(const Tensor& t) {
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < t.numel(); ++i) ids.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
    return ids;
}

double rel(const Tensor& a, const Tensor& b) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
        const double x = a.data<float>()[i], y = b.data<float>()[i];
        num += (x - y) * (x - y), den += y * y;
    }
    return std::sqrt(num / den);
}

// Rows of two [T, V] logits whose greedy picks (top_pick: the first on ties) agree.
int top1_same(const Tensor& a, const Tensor& b) {
    int same = 0;
    for (int64_t t = 0; t < a.dim(0); ++t)
        same += top_pick(a.row(t).data<float>(), a.dim(1)).id == top_pick(b.row(t).data<float>(), b.dim(1)).id;
    return same;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string golden = argc > 1 ? argv[1] : "../shared/golden";
    const std::vector<Scheme> all = schemes();

    std::printf("1. synthetic attention (KV %lld x hd %lld, %lld query heads, %lld keys, %lld queries): "
                "output rel. error vs f32 K/V\n",
                (long long)kKV, (long long)kHd, (long long)(kKV * kG), (long long)kTk, (long long)kTq);
    std::printf("%-52s %10s %12s %12s\n", "scheme", "B/tok/head", "gaussian", "outliers");
    std::vector<Synthetic> data{make_synthetic(false, 1), make_synthetic(true, 2)};
    std::vector<std::vector<double>> exact;
    for (const Synthetic& s : data) exact.push_back(attend(s.q, s.k, s.v));
    auto synthetic_row = [&](const std::string& name, double bytes, const std::function<void(Tensor&, Tensor&)>& fq) {
        std::printf("%-52s %10.1f", name.c_str(), bytes);
        for (size_t i = 0; i < data.size(); ++i) {
            Tensor k = copy_of(data[i].k), v = copy_of(data[i].v);
            fq(k, v);
            std::printf(" %12.3e", rel(attend(data[i].q, k, v), exact[i]));
        }
        std::printf("\n");
        std::fflush(stdout);
    };
    synthetic_row("int8 per (token, head), f32 scale (today's --media-kv int8)", 2 * (kHd + 4.0), [](Tensor& k, Tensor& v) {
        for (Tensor* t : {&k, &v}) *t = dequantize(quantize(*t, QuantFormat{8, 0}));
    });
    for (const Scheme& s : all)
        synthetic_row(s.name, s.bytes_per_head(kHd), [&](Tensor& k, Tensor& v) {
            fake_quantize(k, s.k, s.st);
            fake_quantize(v, s.v, s.st);
        });

    std::printf("\n2. golden tiny model (hd 32: groups above 32 are the whole head), teacher-forced logits\n");
    const std::string dir = golden + "/tiny-a";
    model::ModelConfig config = model::load_config(dir);
    io::TensorStore weights = io::TensorStore::open(dir);
    auto backend = make_cpu_backend(0);
    model::vidi15::Gemma2 decoder{config, model::WeightLoader(weights, *backend, {})};
    std::printf("%-52s %22s %22s %10s\n", "scheme", "vs golden synth/dummy", "vs f32 K/V synth/dummy", "top-1");
    struct Case {
        std::shared_ptr<io::SafetensorsFile> file;
        model::MediaKV visual, audio;
        Tensor unquantised;
    };
    std::vector<Case> cases;
    for (const char* video : {"synth", "dummy"}) {
        Case c;
        c.file = io::SafetensorsFile::open(golden + "/tiny-a_" + video + ".golden.safetensors");
        c.visual = decoder.encode_media(c.file->get("image_tokens").to_f32());
        c.audio = decoder.encode_media(c.file->get("audio_tokens").to_f32());
        c.unquantised = runtime::forced_logits(decoder, ids_of(c.file->get("prompt_ids")), {&c.visual, &c.audio},
                                               ids_of(c.file->get("forced_ids")));
        cases.push_back(std::move(c));
    }
    auto tiny_row = [&](const std::string& name, const std::function<Tensor(const Tensor&, bool)>& fq) {
        double vs_golden[2], vs_f32[2];
        int top1 = 0, steps = 0;
        for (size_t i = 0; i < cases.size(); ++i) {
            Case& c = cases[i];
            model::MediaKV vis, aud;
            for (auto [src, dst] : {std::pair{&c.visual, &vis}, std::pair{&c.audio, &aud}}) {
                dst->tokens = src->tokens;
                for (size_t l = 0; l < src->k.size(); ++l) {
                    dst->k.emplace_back(fq(src->k[l].values, true));
                    dst->v.emplace_back(fq(src->v[l].values, false));
                }
            }
            Tensor got = runtime::forced_logits(decoder, ids_of(c.file->get("prompt_ids")), {&vis, &aud},
                                                ids_of(c.file->get("forced_ids")));
            Tensor want = c.file->get("forced_logits").to_f32();
            vs_golden[i] = rel(got, want);
            vs_f32[i] = rel(got, c.unquantised);
            top1 += top1_same(got, want);
            steps += static_cast<int>(want.dim(0));
        }
        std::printf("%-52s %10.3e %10.3e  %10.3e %10.3e %6d/%d\n", name.c_str(), vs_golden[0], vs_golden[1], vs_f32[0],
                    vs_f32[1], top1, steps);
        std::fflush(stdout);
    };
    tiny_row("f32 K/V", [](const Tensor& t, bool) { return copy_of(t); });
    tiny_row("int8 per (token, head)", [](const Tensor& t, bool) {
        return dequantize(quantize(t, QuantFormat{8, 0}));
    });
    for (const Scheme& s : all)
        tiny_row(s.name, [&](const Tensor& t, bool is_key) {
            Tensor c = copy_of(t);
            fake_quantize(c, is_key ? s.k : s.v, s.st);
            return c;
        });
    return 0;
}
