// Scaled dot-product attention (dispatch to the kernels of attention_kernels.h), RoPE and
// KV-head expansion. Softmax is max-subtracted in f32 with the normaliser summed in
// double; the soft-cap is applied to the scaled scores before the mask. K/V may be f32 or
// bf16 (a bf16 media cache), or a quantised media K/V pair (int8, int4), dequantised row by
// row inside the kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/cpu_backend.h"

namespace vidi::cpu {

namespace {
// Below this many query rows per KV group the row kernel (no sgemm) is faster.
constexpr int64_t kBlockedMinRows = 16;
}  // namespace

Tensor CpuBackend::attention(const Tensor& q, const QTensor& kq, const QTensor& vq, const AttentionParams& p) {
    if (p.step_pos.defined()) {
        // The position is in host memory here: a fixed q_pos0 over the keys it can see.
        VIDI_CHECK(p.causal, "attention: a step position needs causal attention");
        AttentionParams fixed = p;
        fixed.step_pos = Tensor();
        fixed.q_pos0 = read_step_pos(p.step_pos, "attention");
        const int64_t end = std::min(kq.dim(0), fixed.q_pos0 + q.dim(0));
        return attention(q, kq.rows(0, end), vq.rows(0, end), fixed);
    }
    require_f32_host(q, "attention", "q");
    check_quantized_kv(kq, vq, p);
    for (const QTensor* t : {&kq, &vq}) {
        VIDI_CHECK(t->defined() && t->values.on_host() && (!t->quantized() || t->scales.on_host()),
                   "attention: k/v must be host tensors");
        VIDI_CHECK(t->quantized() || t->values.dtype() == DType::f32 || t->values.dtype() == DType::bf16,
                   "attention: k/v must be f32, bf16 or quantised, got ", t->describe());
    }
    VIDI_CHECK(q.rank() == 3 && kq.rank() == 3 && vq.rank() == 3, "attention: expected q[Tq,H,hd], k/v[Tk,KV,hd], got ",
               q.describe(), ", ", kq.describe(), ", ", vq.describe());
    VIDI_CHECK(kq.shape() == vq.shape() && kq.values.dtype() == vq.values.dtype(), "attention: k ", kq.describe(),
               " and v ", vq.describe(), " differ");
    const int64_t Tq = q.dim(0), H = q.dim(1), hd = q.dim(2), Tk = kq.dim(0), KVH = kq.dim(1);
    VIDI_CHECK(kq.dim(2) == hd, "attention: head sizes differ: q ", q.describe(), ", k ", kq.describe());
    VIDI_CHECK(KVH > 0 && H % KVH == 0, "attention: ", H, " query heads are not a multiple of ", KVH, " KV heads");
    VIDI_CHECK(p.window >= 0 && p.q_pos0 >= 0, "attention: negative window or q_pos0");
    Tensor out = Tensor::empty({Tq, H, hd}, DType::f32);
    const AttentionShape s{Tq, Tk, H, KVH, hd};
    const KvRows k(kq), v(vq);
    if (Tq * s.rep() >= kBlockedMinRows) attention_blocked(q.data<float>(), k, v, out.data<float>(), s, p, threads_);
    else attention_rows(q.data<float>(), k, v, out.data<float>(), s, p, threads_);
    return out;
}

KvRows::KvRows(const QTensor& t) : kv_(t.dim(1)), hd_(t.dim(2)) {
    if (t.quantized()) quant_.emplace(t);
    else if (t.values.dtype() == DType::f32) f32_ = t.values.data<float>();
    else bf16_ = static_cast<const uint16_t*>(t.values.raw());
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
