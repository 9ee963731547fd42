// CudaBackend's attention. Unmasked attention of many query rows (the towers: SigLIP's 729
// and Whisper's 1500 tokens a sequence) runs on tensor cores: in attention_flash.cu's kernel
// where it has one for the head dim, else as two batched cuBLAS GEMMs around a row softmax
// (attention_dense.cu). Everything else (masks, quantised media K/V, few query rows over long
// key ranges) goes to the tiled and few-row kernels (attention.cu, attention_decode.cu).
#include <algorithm>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_checks.h"

namespace vidi::cuda {
namespace {

// Below this many query rows the CUDA-core kernels serve: the GEMM path would write and read a
// score matrix for very few rows. From 16 rows on (a prompt's text over the media tokens:
// ~40 queries over 66 000 keys) the GEMMs, bound by reading K and V, beat the CUDA cores.
constexpr int64_t kDenseMinQueries = 16;

bool dense_fits(int64_t Tq, int64_t Tk, bool quantized_kv, const AttentionParams& p) {
    return !quantized_kv && !p.causal && p.window == 0 && Tq >= kDenseMinQueries && Tk > 0 &&
           static_cast<size_t>(Tq * Tk) * sizeof(float) <= kAttentionScoreBytes;
}

// The arguments every attention kernel takes: Tq queries of H heads over Tk keys of KV heads,
// head dim hd, with q, k, v and out packed (k and v null where they are quantised). Masks,
// positions and quantised K/V are the caller's to add; unmasked attention (the towers') needs
// nothing more.
AttentionArgs core_args(DType act, const void* q, const void* k, const void* v, void* out, int64_t Tq, int64_t Tk,
                            int64_t H, int64_t KV, int64_t hd, const AttentionParams& p) {
    AttentionArgs a;
    a.act = act;
    a.q = q;
    a.k = k;
    a.v = v;
    a.out = out;
    a.Tq = Tq;
    a.Tk = Tk;
    a.H = static_cast<int>(H);
    a.KV = static_cast<int>(KV);
    a.hd = static_cast<int>(hd);
    a.scale = p.scale;
    a.softcap = p.softcap;
    return a;
}

}  // namespace

Tensor CudaBackend::attention(const Tensor& q, const QTensor& kq, const QTensor& vq, const AttentionParams& p) {
    return attend(q, kq, vq, p, nullptr);
}

void CudaBackend::attention_add_(Tensor& out, const Tensor& q, const QTensor& k, const QTensor& v,
                                 const AttentionParams& p) {
    require_act(out, "attention_add_", "out");
    VIDI_CHECK(out.shape() == q.shape(), "attention_add_: out ", out.describe(), " does not match q ", q.describe());
    attend(q, k, v, p, &out);
}

void CudaBackend::step_attention_add_(Tensor& out, const Tensor& q, const std::vector<QTensor>& keys,
                                      const std::vector<QTensor>& values, const AttentionParams& p) {
    require_act(out, "step_attention_add_", "out");
    const int64_t B = step_attention_rows(out, q, keys, values, p);
    // One launch when every row is a one-slice problem of the few-row kernel on 16-bit K/V
    // (a step's short text cache): each block then does for its row what the row's own launch
    // would. Otherwise (long caches that split the keys, quantised K/V) a launch a row.
    StepRows rows;
    AttentionArgs shared;
    bool one_launch = B <= kStepRowsMax;
    AttentionParams row_p = p;
    for (int64_t b = 0; b < B && one_launch; ++b) {
        const Tensor qb = q.rows(b, b + 1);
        check_attention_inputs(qb, keys[size_t(b)], values[size_t(b)], p);
        row_p.step_pos = p.step_pos.rows(b, b + 1);
        AttentionArgs a = attention_args(qb, keys[size_t(b)], values[size_t(b)], row_p);
        a.out = out.rows(b, b + 1).raw();
        a.accumulate = true;
        one_launch = !keys[size_t(b)].quantized() && attention_can_accumulate(a) &&
                     attention_splits(a, sm_count_) == 1;
        if (b == 0) shared = a;
        rows.row[rows.n++] = {a.q, a.k, a.v, a.out, a.q_pos, a.Tk};
    }
    if (one_launch) return attention_step_rows(shared, rows, stream_);
    Backend::step_attention_add_(out, q, keys, values, p);
}

// Queries of one launch of the few-row kernel in cross(): as many as it takes (its rows are
// query × head pairs of one KV head), so that each launch takes the kernel a query alone takes.
static int64_t queries_per_launch(const Tensor& q, const QTensor& k) {
    const int64_t group = q.dim(1) / std::max<int64_t>(1, k.dim(1));
    return std::max<int64_t>(1, kDecodeMaxRows / std::max<int64_t>(1, group));
}

Tensor CudaBackend::cross_attention(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p) {
    return cross(q, k, v, p, nullptr);
}

void CudaBackend::cross_attention_add_(Tensor& out, const Tensor& q, const QTensor& k, const QTensor& v,
                                       const AttentionParams& p) {
    require_act(out, "cross_attention_add_", "out");
    VIDI_CHECK(out.shape() == q.shape(), "cross_attention_add_: out ", out.describe(), " does not match q ",
               q.describe());
    cross(q, k, v, p, &out);
}

Tensor CudaBackend::cross(const Tensor& q, const QTensor& kq, const QTensor& vq, const AttentionParams& p,
                          Tensor* add_to) {
    VIDI_CHECK(!p.causal && p.window == 0 && !p.step_pos.defined(), "cross_attention: unmasked attention only");
    check_attention_inputs(q, kq, vq, p);
    const int64_t hd = q.dim(2);
    if (!kq.quantized() && (hd == 32 || hd == 64 || hd == 128 || hd == 256)) {
        const AttentionArgs a = attention_args(q, kq, vq, p);
        if (cross_attention_supports(a)) {
            Tensor out = add_to ? *add_to : empty(q.shape(), act_);
            // Queries in chunks whose slices' partials stay under kAttentionScoreBytes (a batch
            // of prompts); rows are independent, so the chunks change no bits.
            const int splits = cross_attention_splits(a, sm_count_);
            AttentionArgs one = a;
            one.Tq = 1;
            const size_t per_query = attention_workspace_bytes(one, splits);
            const int64_t R = q.dim(0);
            const int64_t chunk = per_query ? std::max<int64_t>(1, int64_t(kAttentionScoreBytes / per_query)) : R;
            for (int64_t r0 = 0; r0 < R; r0 += chunk) {
                const int64_t r1 = std::min(R, r0 + chunk);
                AttentionArgs c = a;
                c.q = q.rows(r0, r1).raw();
                c.Tq = r1 - r0;
                c.out = out.rows(r0, r1).raw();
                c.accumulate = add_to != nullptr;
                run_attention(c, splits, cuda::cross_attention);
            }
            return out;
        }
    }
    // Quantised K/V (int8, int4) and other head dims: a few queries a launch of the few-row
    // kernel, whose split count depends on the keys only (each row as alone).
    const int64_t R = q.dim(0), chunk = queries_per_launch(q, kq);
    if (!add_to && R <= chunk) return attend(q, kq, vq, p, nullptr);
    Tensor out = add_to ? *add_to : empty(q.shape(), act_);
    for (int64_t r0 = 0; r0 < R; r0 += chunk) {
        const int64_t r1 = std::min(R, r0 + chunk);
        Tensor dst = out.rows(r0, r1);
        if (add_to) attend(q.rows(r0, r1), kq, vq, p, &dst);
        else copy_(dst, attend(q.rows(r0, r1), kq, vq, p, nullptr));
    }
    return out;
}

void CudaBackend::check_attention_inputs(const Tensor& q, const QTensor& kq, const QTensor& vq,
                                         const AttentionParams& p) {
    require_act(q, "attention", "q");
    VIDI_CHECK(kq.defined() && vq.defined(), "attention: k or v is undefined");
    check_quantized_kv(kq, vq, p);  // the layouts media_kv_format gives
    const Tensor& k = kq.values;
    const Tensor& v = vq.values;
    const bool quantized_kv = kq.quantized();
    if (quantized_kv) {
        for (const QTensor* t : {&kq, &vq})
            VIDI_CHECK(t->values.device() == Device::cuda && t->scales.device() == Device::cuda &&
                           (!t->zeros.defined() || t->zeros.device() == Device::cuda),
                       "attention: quantised K/V ", t->describe(), " must be on the GPU");
    } else {
        require_act(k, "attention", "k");
        require_act(v, "attention", "v");
    }
    require_rank(q, 3, "attention", "q [Tq, H, hd]");
    require_rank(k, 3, "attention", "k [Tk, KV, hd]");
    VIDI_CHECK(k.shape() == v.shape(), "attention: k ", kq.describe(), " and v ", vq.describe(), " differ");
    const int64_t hd = q.dim(2), H = q.dim(1), KV = k.dim(1);
    VIDI_CHECK(kq.dim(2) == hd, "attention: head dimensions differ: q ", q.describe(), ", k ", kq.describe());
    VIDI_CHECK(KV > 0 && H % KV == 0, "attention: ", H, " query heads are not a multiple of ", KV, " KV heads");
    if (quantized_kv) {
        VIDI_CHECK(hd % 8 == 0 && hd <= kAttentionMaxHeadDim, "attention: quantised K/V need a head dimension that "
                   "is a multiple of 8, at most ", kAttentionMaxHeadDim, ", got ", hd);
        // The kernels read 8-byte (int8) or 4-byte (int4) words of codes and 16-byte words of
        // 4-bit key scales: views must keep the allocations' alignment.
        const uintptr_t align = kq.bits == 8 ? 8 : 4;
        for (const QTensor* t : {&kq, &vq})
            VIDI_CHECK(reinterpret_cast<uintptr_t>(t->values.raw()) % align == 0 &&
                           (kq.bits == 8 || (aligned16(t->scales.raw()) && (!t->zeros.defined() || aligned16(t->zeros.raw())))),
                       "attention: quantised k/v ", t->describe(), " must start on ", align, "-byte boundaries (scales on 16)");
    }
}

AttentionArgs CudaBackend::attention_args(const Tensor& q, const QTensor& kq, const QTensor& vq,
                                          const AttentionParams& p) {
    const Tensor& k = kq.values;
    const Tensor& v = vq.values;
    const bool quantized_kv = kq.quantized();
    const int64_t hd = q.dim(2);
    VIDI_CHECK(hd % 8 == 0 && hd <= kAttentionMaxHeadDim, "attention: head dimension ", hd,
               " unsupported (must be a multiple of 8, at most ", kAttentionMaxHeadDim, ")");
    VIDI_CHECK(aligned16(q.raw()) && (quantized_kv || (aligned16(k.raw()) && aligned16(v.raw()))),
               "attention: q/k/v must start on 16-byte boundaries (views at odd offsets are not supported)");
    VIDI_CHECK(p.window >= 0, "attention: negative window ", p.window);
    AttentionArgs a = core_args(act_, q.raw(), quantized_kv ? nullptr : k.raw(), quantized_kv ? nullptr : v.raw(),
                                nullptr, q.dim(0), k.dim(0), q.dim(1), k.dim(1), hd, p);
    if (quantized_kv && kq.bits == 8) {
        a.k8 = static_cast<const int8_t*>(k.raw());
        a.v8 = static_cast<const int8_t*>(v.raw());
        a.k_scale = static_cast<const float*>(kq.scales.raw());
        a.v_scale = static_cast<const float*>(vq.scales.raw());
    } else if (quantized_kv) {
        a.k4 = static_cast<const uint8_t*>(k.raw());
        a.v4 = static_cast<const uint8_t*>(v.raw());
        a.k4_scale = ptr<fp16>(kq.scales);
        a.k4_zero = ptr<fp16>(kq.zeros);
        a.v4_scale = ptr<fp16>(vq.scales);
        a.key_block = kq.block;
        a.v_group = vq.group;
    }
    a.causal = p.causal;
    a.window = p.window;
    a.q_pos0 = p.q_pos0;
    a.step_rows = p.step_rows;
    if (p.step_pos.defined()) {
        VIDI_CHECK(p.causal, "attention: a step position needs causal attention");
        a.q_pos = step_pos_ptr(p.step_pos, "attention");
        a.q_pos0 = std::max<int64_t>(0, a.Tk - a.Tq);  // the furthest it can be: the split count covers it
    }
    return a;
}

void CudaBackend::run_attention(const AttentionArgs& a, int splits, AttentionKernel kernel) {
    Tensor workspace;
    const size_t ws_bytes = attention_workspace_bytes(a, splits);
    if (ws_bytes) workspace = empty({static_cast<int64_t>(ws_bytes)}, DType::u8);
    kernel(a, splits, workspace.defined() ? workspace.raw() : nullptr, stream_);
}

Tensor CudaBackend::attend(const Tensor& q, const QTensor& kq, const QTensor& vq, const AttentionParams& p,
                           Tensor* add_to) {
    // Only the few-row kernel adds into an existing output itself; elsewhere the sum is an add_.
    auto finish = [&](Tensor result) {
        if (add_to) add_(*add_to, result);
        return result;
    };
    check_attention_inputs(q, kq, vq, p);
    const Tensor& k = kq.values;
    const Tensor& v = vq.values;
    const int64_t hd = q.dim(2), H = q.dim(1), KV = k.dim(1);
    if (dense_fits(q.dim(0), k.dim(0), kq.quantized(), p))
        return finish(dense_attention(q.reshape({1, q.dim(0), H, hd}), k.reshape({1, k.dim(0), KV, hd}),
                                      v.reshape({1, v.dim(0), KV, hd}), p)
                          .reshape(q.shape()));
    if (hd % 8 != 0 && hd < kAttentionMaxHeadDim) {
        // The kernel moves 16-byte vectors (8 values). Zero-padding the head dimension leaves
        // every score and output unchanged; the padded output columns are cut off again.
        const int64_t hdp = (hd + 7) / 8 * 8;
        auto pad = [&](const Tensor& t) {
            return pad_grid(t.reshape({t.dim(0) * t.dim(1), hd, 1, 1}), static_cast<int>(hdp - hd), 0)
                .reshape({t.dim(0), t.dim(1), hdp});
        };
        Tensor o = attention(pad(q), pad(k), pad(v), p);
        Tensor cols = transpose2d(o.reshape({q.dim(0) * H, hdp}));  // [hdp, Tq·H]
        return finish(transpose2d(cols.rows(0, hd)).reshape({q.dim(0), H, hd}));
    }
    AttentionArgs a = attention_args(q, kq, vq, p);
    const bool add_here = add_to && attention_can_accumulate(a);
    Tensor out = add_here ? *add_to : empty(q.shape(), act_);
    a.out = out.raw();
    a.accumulate = add_here;
    run_attention(a, attention_splits(a, sm_count_), cuda::attention);
    return add_here ? out : finish(out);
}

Tensor CudaBackend::attention_batch(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
    require_act(q, "attention_batch", "q");
    require_act(k, "attention_batch", "k");
    require_act(v, "attention_batch", "v");
    require_rank(q, 4, "attention_batch", "q [n, Tq, H, hd]");
    require_rank(k, 4, "attention_batch", "k [n, Tk, KV, hd]");
    VIDI_CHECK(k.shape() == v.shape() && k.dim(0) == q.dim(0) && k.dim(3) == q.dim(3), "attention_batch: q ",
               q.describe(), ", k ", k.describe(), " and v ", v.describe(), " do not match");
    VIDI_CHECK(k.dim(2) > 0 && q.dim(2) % k.dim(2) == 0, "attention_batch: ", q.dim(2),
               " query heads are not a multiple of ", k.dim(2), " KV heads");
    if (!dense_fits(q.dim(1), k.dim(1), false, p)) return Backend::attention_batch(q, k, v, p);
    return dense_attention(q, k, v, p);
}

Tensor CudaBackend::layer_norm_attention(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                         const std::array<NormedLinear, 3>& qkv, int64_t sequences, int64_t heads,
                                         const AttentionParams& p) {
    // With q, k and v's FP8 copies joined: one GEMM writes each row's q, k and v side by side
    // ([rows, 3·C]), and the flash kernel reads them there (their pitch 3·C).
    const JoinedFp8* joined = joined_fp8(qkv);
    const int64_t rows = x.rank() >= 1 && x.dim(-1) ? x.numel() / x.dim(-1) : 0, C = qkv[0].w->values.dim(0);
    const bool fused = joined && sequences > 0 && heads > 0 && rows % sequences == 0 && C % heads == 0 &&
                       qkv[1].w->values.dim(0) == C && qkv[2].w->values.dim(0) == C &&
                       flash_attention_supports(static_cast<int>(C / heads)) &&
                       dense_fits(rows / sequences, rows / sequences, false, p) &&
                       normed_fp8_takes(x, w, b, qkv);  // (so C is a multiple of 8: the FP8 GEMM's N)
    if (!fused) return Backend::layer_norm_attention(x, w, b, eps, qkv, sequences, heads, p);
    const Fp8Rows h = layer_norm_fp8(x, w, b, eps);
    Tensor y = empty({rows, 3 * C}, act_);
    gemm_->linear_fp8(y.raw(), h.codes.raw(), ptr<float>(h.scales), joined->rows.codes.raw(),
                      ptr<float>(joined->rows.scales), joined->bias.raw(), rows, 3 * C, x.dim(-1), act_, stream_, 0,
                      Epilogue::none);
    Tensor out = empty({rows, C}, act_);
    const auto* base = static_cast<const uint8_t*>(y.raw());
    const size_t width = static_cast<size_t>(C) * dtype_size(act_);  // q's bytes a row; 16-byte whole (C % 8)
    const int64_t T = rows / sequences;
    AttentionArgs a = core_args(act_, base, base + width, base + 2 * width, out.raw(), T, T, heads, heads,
                                    C / heads, p);
    a.q_pitch = a.kv_pitch = 3 * C;
    flash_attention(a, sequences, sm_count_, stream_);
    return out;
}

Tensor CudaBackend::dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
    const int64_t n = q.dim(0), Tq = q.dim(1), H = q.dim(2), hd = q.dim(3), Tk = k.dim(1), KV = k.dim(2);
    Tensor out = empty(q.shape(), act_);
    const AttentionArgs a = core_args(act_, q.raw(), k.raw(), v.raw(), out.raw(), Tq, Tk, H, KV, hd, p);
    if (flash_attention_supports(a.hd) && aligned16(a.q) && aligned16(a.k) && aligned16(a.v)) {
        flash_attention(a, n, sm_count_, stream_);
        return out;
    }
    // Problems (sequence, head) go in chunks whose scores stay under kAttentionScoreBytes.
    const int64_t problems = n * H, per_problem = Tq * Tk;
    const int chunk = static_cast<int>(std::clamp<int64_t>(
        static_cast<int64_t>(kAttentionScoreBytes / (per_problem * sizeof(float))), 1, problems));
    Tensor scores = empty({chunk * per_problem}, DType::f32);
    Tensor table = empty({int64_t(6) * chunk * int64_t(sizeof(void*))}, DType::u8);
    void** t = static_cast<void**>(table.raw());
    float* s = static_cast<float*>(scores.raw());
    for (int64_t first = 0; first < problems; first += chunk) {
        const int count = static_cast<int>(std::min<int64_t>(chunk, problems - first));
        dense_attention_pointers(a, s, first, count, t, stream_);
        auto part = [&](int i) { return reinterpret_cast<const void* const*>(t + int64_t(i) * count); };
        // scores[Tq, Tk] = scale · q[Tq, hd] · k[Tk, hd]ᵀ
        gemm_->batched(t + 2 * count, DType::f32, Tk, part(0), H * hd, part(1), KV * hd, act_, true, Tq, Tk, hd,
                       p.scale, count, stream_);
        with_type(act_, [&]<class T>() { softmax_rows_inplace<T>(s, count * Tq, Tk, p.softcap, stream_); });
        // out[Tq, hd] = probabilities[Tq, Tk] · v[Tk, hd]; a 16-bit row is 2·Tk elements apart.
        gemm_->batched(t + 5 * count, act_, H * hd, part(3), 2 * Tk, part(4), KV * hd, act_, false, Tq, hd, Tk, 1.0f,
                       count, stream_);
    }
    return out;
}

}  // namespace vidi::cuda
