// Scaled dot-product attention (dispatch to the kernels of attention_kernels.h), RoPE and
// KV-head expansion. Softmax is max-subtracted in f32 with the normaliser summed in
// double; the soft-cap is applied to the scaled scores before the mask. K/V may be f32 or
// bf16 (a bf16 media cache), or int8 with per-head scales (expanded to f32 first).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/attention_kernels.h"
#include "backend/cpu/cpu_backend.h"
#include "core/quantize.h"

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
    VIDI_CHECK(kq.quantized() == vq.quantized(), "attention: k ", kq.describe(), " and v ", vq.describe(),
               " must both be float or both be int8");
    if (kq.quantized())
        VIDI_CHECK(kq.bits == 8 && vq.bits == 8 && kq.group == kq.dim(-1) && vq.group == vq.dim(-1),
                   "attention: quantised k/v must be int8 with one scale per head, got ", kq.describe());
    // 8-bit K/V (a compact media cache) are expanded here: the CPU path serves small models.
    const Tensor k = kq.quantized() ? dequantize(kq) : kq.values;
    const Tensor v = vq.quantized() ? dequantize(vq) : vq.values;
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
    const AttentionShape s{Tq, Tk, H, KVH, hd};
    const bool blocked = Tq * s.rep() >= kBlockedMinRows;
    const float* qp = q.data<float>();
    float* op = out.data<float>();
    if (k.dtype() == DType::f32) {
        const float *kp = k.data<float>(), *vp = v.data<float>();
        blocked ? attention_blocked(qp, kp, vp, op, s, p, threads_) : attention_rows(qp, kp, vp, op, s, p, threads_);
    } else {
        const auto* kp = static_cast<const uint16_t*>(k.raw());
        const auto* vp = static_cast<const uint16_t*>(v.raw());
        blocked ? attention_blocked(qp, kp, vp, op, s, p, threads_) : attention_rows(qp, kp, vp, op, s, p, threads_);
    }
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
