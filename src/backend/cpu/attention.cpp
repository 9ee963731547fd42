// Scaled dot-product attention, RoPE and KV-head expansion.
//
// attention() works one (query, head) pair at a time with a score buffer of Tk floats per
// thread, so tens of thousands of media keys never need a [H, Tq, Tk] matrix. Softmax is
// max-subtracted in f32 with the normaliser summed in double; the soft-cap is applied to
// the scaled scores before the mask. K/V may be f32 or bf16 (a bf16 media cache).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace vidi::cpu {
namespace {

inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const uint16_t* p, int64_t i) {
    uint32_t u = static_cast<uint32_t>(p[i]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// The visible key range [lo, hi] of the query at absolute position pos (empty if hi < lo).
void visible_keys(const AttentionParams& p, int64_t pos, int64_t Tk, int64_t* lo, int64_t* hi) {
    *lo = 0;
    *hi = Tk - 1;
    if (p.causal) *hi = std::min(*hi, pos);
    if (p.window > 0) *lo = std::max<int64_t>(0, pos - p.window);
}

template <class KV>
void attend(const float* q, const KV* k, const KV* v, float* out, int64_t Tq, int64_t Tk, int64_t H, int64_t KVH,
            int64_t hd, const AttentionParams& p, int threads) {
    const int64_t rep = H / KVH;
    const bool capped = p.softcap > 0;
    const float inv_cap = capped ? 1.0f / p.softcap : 0.0f;
#pragma omp parallel num_threads(threads)
    {
        std::vector<float> scores(static_cast<size_t>(std::max<int64_t>(Tk, 1)));
        std::vector<float> acc(static_cast<size_t>(hd));
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int64_t i = 0; i < Tq; ++i) {
            for (int64_t h = 0; h < H; ++h) {
                const float* qi = q + (i * H + h) * hd;
                float* oi = out + (i * H + h) * hd;
                const int64_t g = h / rep;
                int64_t lo, hi;
                visible_keys(p, p.q_pos0 + i, Tk, &lo, &hi);
                if (hi < lo) {  // nothing visible: define the output as zero
                    std::fill(oi, oi + hd, 0.0f);
                    continue;
                }
                float mx = -std::numeric_limits<float>::infinity();
                for (int64_t j = lo; j <= hi; ++j) {
                    const KV* kj = k + (j * KVH + g) * hd;
                    float s = 0.0f;
#pragma omp simd reduction(+ : s)
                    for (int64_t d = 0; d < hd; ++d) s += qi[d] * load(kj, d);
                    s *= p.scale;
                    if (capped) s = p.softcap * std::tanh(s * inv_cap);
                    scores[j] = s;
                    mx = std::max(mx, s);
                }
                double sum = 0.0;
                for (int64_t j = lo; j <= hi; ++j) {
                    scores[j] = std::exp(scores[j] - mx);
                    sum += scores[j];
                }
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (int64_t j = lo; j <= hi; ++j) {
                    const KV* vj = v + (j * KVH + g) * hd;
                    const float w = scores[j];
#pragma omp simd
                    for (int64_t d = 0; d < hd; ++d) acc[d] += w * load(vj, d);
                }
                const float inv = static_cast<float>(1.0 / sum);
                for (int64_t d = 0; d < hd; ++d) oi[d] = acc[d] * inv;
            }
        }
    }
}

}  // namespace

Tensor CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
    require_f32_host(q, "attention", "q");
    for (const Tensor* t : {&k, &v}) {
        VIDI_CHECK(t->defined() && t->on_host(), "attention: k/v must be host tensors");
        VIDI_CHECK(t->dtype() == DType::f32 || t->dtype() == DType::bf16, "attention: k/v must be f32 or bf16, got ",
                   t->describe());
    }
    VIDI_CHECK(q.rank() == 3 && k.rank() == 3 && v.rank() == 3, "attention: expected q[Tq,H,hd], k/v[Tk,KV,hd], got ",
               q.describe(), ", ", k.describe(), ", ", v.describe());
    VIDI_CHECK(k.shape() == v.shape() && k.dtype() == v.dtype(), "attention: k ", k.describe(), " and v ",
               v.describe(), " differ");
    const int64_t Tq = q.dim(0), H = q.dim(1), hd = q.dim(2), Tk = k.dim(0), KVH = k.dim(1);
    VIDI_CHECK(k.dim(2) == hd, "attention: head sizes differ: q ", q.describe(), ", k ", k.describe());
    VIDI_CHECK(KVH > 0 && H % KVH == 0, "attention: ", H, " query heads are not a multiple of ", KVH, " KV heads");
    VIDI_CHECK(p.window >= 0 && p.q_pos0 >= 0, "attention: negative window or q_pos0");
    Tensor out = Tensor::empty({Tq, H, hd}, DType::f32);
    if (k.dtype() == DType::f32)
        attend(q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(), Tq, Tk, H, KVH, hd, p, threads_);
    else
        attend(q.data<float>(), static_cast<const uint16_t*>(k.raw()), static_cast<const uint16_t*>(v.raw()),
               out.data<float>(), Tq, Tk, H, KVH, hd, p, threads_);
    return out;
}

void CpuBackend::rope_(Tensor& x, int64_t pos0, double theta) {
    require_f32_host(x, "rope_", "x");
    VIDI_CHECK(x.rank() == 3 && x.dim(2) % 2 == 0, "rope_: expected x[T, H, hd] with even hd, got ", x.describe());
    const int64_t T = x.dim(0), H = x.dim(1), hd = x.dim(2), half = hd / 2;
    // As Hugging Face computes it, in f32: inv_freq = 1 / theta^(2i/hd), angle = pos · inv_freq.
    std::vector<float> inv_freq(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
        inv_freq[i] = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / static_cast<float>(hd));
    float* xp = x.data<float>();
#pragma omp parallel num_threads(threads_)
    {
        std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; ++t) {
            const float pos = static_cast<float>(pos0 + t);
            for (int64_t i = 0; i < half; ++i) {
                const float a = pos * inv_freq[i];
                c[i] = std::cos(a);
                s[i] = std::sin(a);
            }
            for (int64_t h = 0; h < H; ++h) {
                float* r = xp + (t * H + h) * hd;
                for (int64_t i = 0; i < half; ++i) {
                    const float x1 = r[i], x2 = r[i + half];
                    r[i] = x1 * c[i] - x2 * s[i];
                    r[i + half] = x2 * c[i] + x1 * s[i];
                }
            }
        }
    }
}

Tensor CpuBackend::repeat_kv(const Tensor& v, int heads) {
    require_f32_host(v, "repeat_kv", "v");
    VIDI_CHECK(v.rank() == 3, "repeat_kv: expected v[T, KV, hd], got ", v.describe());
    const int64_t T = v.dim(0), KVH = v.dim(1), hd = v.dim(2);
    VIDI_CHECK(heads > 0 && KVH > 0 && heads % KVH == 0, "repeat_kv: ", heads, " heads are not a multiple of ", KVH);
    const int64_t rep = heads / KVH;
    Tensor out = Tensor::empty({T, heads, hd}, DType::f32);
    const float* src = v.data<float>();
    float* dst = out.data<float>();
#pragma omp parallel for num_threads(threads_) schedule(static)
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < heads; ++h)
            std::memcpy(dst + (t * heads + h) * hd, src + (t * KVH + h / rep) * hd, static_cast<size_t>(hd) * 4);
    return out;
}

}  // namespace vidi::cpu
