// CudaBackend's ops: argument checks (each failure a vidi::Error naming the op and the
// tensor), output allocation, then the kernel launchers of kernels.h / the GEMM.
#include <cmath>
#include <cstring>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_checks.h"

namespace vidi::cuda {

namespace {

struct LinearShape {
    int64_t M, N, K;
};

// x[..., K] · w[N, K]ᵀ + bias[N] with a float weight: the arguments checked.
LinearShape check_float_linear(const Tensor& x, const Tensor& w, const Tensor& bias, const char* op) {
    require_bf16(x, op, "x");
    require_bf16(w, op, "weight");
    require_rank(w, 2, op, "weight");
    VIDI_CHECK(x.rank() >= 1 && x.dim(-1) == w.dim(1), op, ": x ", x.describe(), " does not match weight ",
               w.describe(), " (expected x[..., ", w.dim(1), "])");
    const int64_t K = w.dim(1), N = w.dim(0), M = K ? x.numel() / K : 0;
    VIDI_CHECK(K > 0, op, ": weight ", w.describe(), " has no input features");
    if (bias.defined()) {
        require_bf16(bias, op, "bias");
        VIDI_CHECK(bias.numel() == N, op, ": bias ", bias.describe(), " does not match weight ", w.describe());
    }
    return {M, N, K};
}

const bf16* bias_or_null(const Tensor& bias) { return bias.defined() ? ptr(bias) : nullptr; }

// Whether the GEMV takes the M rows of x (checked) with the float weight w: a decoding step
// streams each weight once, faster than cuBLASLt reads it. Otherwise the GEMM serves, whose
// epilogue can also apply GELU or add into the output.
bool float_gemv_takes(const Tensor& x, const Tensor& w, int64_t M) {
    return quant_gemv_supported(float_gemv_view(ptr(w), w.dim(1)), ptr(x), M);
}

}  // namespace

Tensor CudaBackend::linear_gelu(const Tensor& x, const QTensor& w, const Tensor& bias, Gelu kind) {
    if (w.quantized() || kind != Gelu::tanh) return Backend::linear_gelu(x, w, bias, kind);
    const auto [M, N, K] = check_float_linear(x, w.values, bias, "linear_gelu");
    if (M == 0 || float_gemv_takes(x, w.values, M)) return Backend::linear_gelu(x, w, bias, kind);
    Tensor y = empty(with_last(x.shape(), N), DType::bf16);
    if (N > 0) gemm_->linear(ptr(y), ptr(x), ptr(w.values), bias_or_null(bias), M, N, K, stream_, 0, Epilogue::gelu_tanh);
    return y;
}

void CudaBackend::linear_add_(Tensor& y, const Tensor& x, const QTensor& w, const Tensor& bias) {
    if (w.quantized()) return Backend::linear_add_(y, x, w, bias);
    const auto [M, N, K] = check_float_linear(x, w.values, bias, "linear_add_");
    if (M == 0 || float_gemv_takes(x, w.values, M)) return Backend::linear_add_(y, x, w, bias);
    require_bf16(y, "linear_add_", "y");
    VIDI_CHECK(y.shape() == with_last(x.shape(), N), "linear_add_: y ", y.describe(), " does not match x ",
               x.describe(), " · weight ", w.values.describe(), "ᵀ");
    const auto* yb = static_cast<const char*>(y.raw());
    const auto* xb = static_cast<const char*>(x.raw());
    VIDI_CHECK(yb + y.nbytes() <= xb || xb + x.nbytes() <= yb, "linear_add_: y ", y.describe(),
               " overlaps the input x (the GEMM would read what it writes)");
    if (N > 0) gemm_->linear(ptr(y), ptr(x), ptr(w.values), bias_or_null(bias), M, N, K, stream_, 0, Epilogue::accumulate);
}

Tensor CudaBackend::linear(const Tensor& x, const QTensor& wq, const Tensor& bias) {
    if (wq.quantized()) return linear_quantized(x, wq, bias);
    const Tensor& w = wq.values;
    const auto [M, N, K] = check_float_linear(x, w, bias, "linear");
    Tensor y = empty(with_last(x.shape(), N), DType::bf16);
    if (M == 0 || N == 0) return y;
    const bf16* b = bias_or_null(bias);
    if (float_gemv_takes(x, w, M))
        quant_gemv(ptr(y), ptr(x), float_gemv_view(ptr(w), K), b, M, N, stream_);
    else
        gemm_->linear(ptr(y), ptr(x), ptr(w), b, M, N, K, stream_);
    return y;
}

void CudaBackend::add_(Tensor& x, const Tensor& y) {
    require_bf16(x, "add_", "x");
    require_bf16(y, "add_", "y");
    VIDI_CHECK(x.shape() == y.shape(), "add_: shapes differ: ", x.describe(), " and ", y.describe());
    add_inplace(ptr(x), ptr(y), x.numel(), stream_);
}

void CudaBackend::add_broadcast_(Tensor& x, const Tensor& y) {
    require_bf16(x, "add_broadcast_", "x");
    require_bf16(y, "add_broadcast_", "y");
    VIDI_CHECK(x.rank() >= 1 && x.rank() <= 4 && y.rank() >= 1 && y.rank() <= x.rank(),
               "add_broadcast_: cannot broadcast ", y.describe(), " onto ", x.describe());
    // Right-align both shapes to rank 4: [s0, s1, s2, D].
    int64_t xs[4] = {1, 1, 1, 1}, ys[4] = {1, 1, 1, 1};
    for (int i = 0; i < x.rank(); ++i) xs[4 - x.rank() + i] = x.shape()[i];
    for (int i = 0; i < y.rank(); ++i) ys[4 - y.rank() + i] = y.shape()[i];
    VIDI_CHECK(xs[3] == ys[3], "add_broadcast_: last dimensions differ: ", y.describe(), " onto ", x.describe());
    for (int d = 0; d < 3; ++d)
        VIDI_CHECK(ys[d] == xs[d] || ys[d] == 1, "add_broadcast_: cannot broadcast ", y.describe(), " onto ",
                   x.describe());
    add_broadcast_inplace(ptr(x), ptr(y), xs, ys, xs[3], stream_);
}

void CudaBackend::scale_(Tensor& x, float s) {
    require_bf16(x, "scale_", "x");
    scale_inplace(ptr(x), x.numel(), s, stream_);
}

void CudaBackend::gelu_(Tensor& x, Gelu kind) {
    require_bf16(x, "gelu_", "x");
    gelu_inplace(ptr(x), x.numel(), kind == Gelu::tanh, stream_);
}

void CudaBackend::softcap_(Tensor& x, float cap) {
    require_bf16(x, "softcap_", "x");
    VIDI_CHECK(cap > 0, "softcap_: cap must be positive, got ", cap);
    softcap_inplace(ptr(x), x.numel(), cap, stream_);
}

Tensor CudaBackend::glu(const Tensor& gate, const Tensor& up, Glu kind) {
    require_bf16(gate, "glu", "gate");
    require_bf16(up, "glu", "up");
    VIDI_CHECK(gate.shape() == up.shape(), "glu: shapes differ: ", gate.describe(), " and ", up.describe());
    Tensor y = empty(gate.shape(), DType::bf16);
    cuda::glu(ptr(y), ptr(gate), ptr(up), y.numel(), kind == Glu::silu, stream_);
    return y;
}

namespace {
// A residual stream: bf16 or f32 on the GPU.
void require_residual(const Tensor& x, const char* op) {
    VIDI_CHECK(x.defined() && x.device() == Device::cuda && (x.dtype() == DType::bf16 || x.dtype() == DType::f32),
               op, ": x must be a bf16 or f32 tensor on the GPU, got ", x.describe());
}

void check_norm_weight(const Tensor& x, const Tensor& w, NormWeight mode, const char* op) {
    VIDI_CHECK(x.rank() >= 1, op, ": scalar input");
    if (mode != NormWeight::none) {
        require_bf16(w, op, "weight");
        VIDI_CHECK(w.numel() == x.dim(-1), op, ": weight ", w.describe(), " does not match feature size ", x.dim(-1));
    }
}

// x += rms_norm(y): y a sub-layer's bf16 output, x the residual stream of y's shape.
void check_add_rms_norm(const Tensor& x, const Tensor& y, const Tensor& w, NormWeight mode, const char* op) {
    require_bf16(y, op, "y");
    check_norm_weight(y, w, mode, op);
    require_residual(x, op);
    VIDI_CHECK(x.shape() == y.shape(), op, ": shapes differ: ", x.describe(), " and ", y.describe());
}

const bf16* weight_or_null(const Tensor& w, NormWeight mode) { return mode == NormWeight::none ? nullptr : ptr(w); }
}  // namespace

Tensor CudaBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, NormWeight mode) {
    require_residual(x, "rms_norm");
    check_norm_weight(x, w, mode, "rms_norm");
    const int64_t D = x.dim(-1), rows = D ? x.numel() / D : 0;
    Tensor y = empty(x.shape(), DType::bf16);
    cuda::rms_norm(y.raw(), y.dtype(), x.raw(), x.dtype(), weight_or_null(w, mode), rows, D, eps,
                   static_cast<int>(mode), stream_);
    return y;
}

void CudaBackend::add_rms_norm_(Tensor& x, const Tensor& y, const Tensor& w, float eps, NormWeight mode) {
    check_add_rms_norm(x, y, w, mode, "add_rms_norm_");
    const int64_t D = y.dim(-1), rows = D ? y.numel() / D : 0;
    cuda::rms_norm(x.raw(), x.dtype(), y.raw(), y.dtype(), weight_or_null(w, mode), rows, D, eps,
                   static_cast<int>(mode), stream_, true);
}

Tensor CudaBackend::add_then_norm_(Tensor& x, const Tensor& y, const Tensor& w_next, float eps, NormWeight mode) {
    require_bf16(y, "add_then_norm_", "y");
    require_residual(x, "add_then_norm_");
    VIDI_CHECK(x.shape() == y.shape(), "add_then_norm_: shapes differ: ", x.describe(), " and ", y.describe());
    check_norm_weight(x, w_next, mode, "add_then_norm_");
    const int64_t D = y.dim(-1), rows = D ? y.numel() / D : 0;
    Tensor next = empty(x.shape(), DType::bf16);
    cuda::add_then_rms_norm(x.raw(), x.dtype(), ptr(y), ptr(next), weight_or_null(w_next, mode), rows, D, eps,
                            static_cast<int>(mode), stream_);
    return next;
}

Tensor CudaBackend::add_rms_norm_then_norm_(Tensor& x, const Tensor& y, const Tensor& w, const Tensor& w_next,
                                            float eps, NormWeight mode) {
    check_add_rms_norm(x, y, w, mode, "add_rms_norm_then_norm_");
    check_norm_weight(x, w_next, mode, "add_rms_norm_then_norm_");
    const int64_t D = y.dim(-1), rows = D ? y.numel() / D : 0;
    Tensor next = empty(x.shape(), DType::bf16);
    cuda::rms_norm(x.raw(), x.dtype(), y.raw(), y.dtype(), weight_or_null(w, mode), rows, D, eps,
                   static_cast<int>(mode), stream_, true, ptr(next), weight_or_null(w_next, mode));
    return next;
}

std::vector<TopPick> CudaBackend::top_picks(const Tensor& x) {
    require_bf16(x, "top_picks", "logits");
    VIDI_CHECK(x.rank() >= 1 && x.dim(-1) > 0 && x.dim(-1) < (int64_t(1) << 31),
               "top_picks: expected logits [rows, N > 0], got ", x.describe());
    const int64_t N = x.dim(-1), rows = x.numel() / N;
    Tensor found = empty({2 * rows}, DType::i32);  // the ids, then the margins' bits
    int32_t* ids = static_cast<int32_t*>(found.raw());
    cuda::top_pick(ids, reinterpret_cast<float*>(ids + rows), ptr(x), rows, N, stream_);
    const Tensor host = to_host(found);
    std::vector<TopPick> picks(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        picks[static_cast<size_t>(r)].id = host.data<int32_t>()[r];
        std::memcpy(&picks[static_cast<size_t>(r)].margin, host.data<int32_t>() + rows + r, sizeof(float));
    }
    return picks;
}

Tensor CudaBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
    require_bf16(x, "layer_norm", "x");
    require_bf16(w, "layer_norm", "weight");
    require_bf16(b, "layer_norm", "bias");
    VIDI_CHECK(x.rank() >= 1, "layer_norm: scalar input");
    const int64_t D = x.dim(-1), rows = D ? x.numel() / D : 0;
    VIDI_CHECK(w.numel() == D && b.numel() == D, "layer_norm: weight ", w.describe(), " / bias ", b.describe(),
               " do not match feature size ", D);
    Tensor y = empty(x.shape(), DType::bf16);
    cuda::layer_norm(ptr(y), ptr(x), ptr(w), ptr(b), rows, D, eps, stream_);
    return y;
}

namespace {
void check_rope(const Tensor& x, double theta, const char* op, const char* what) {
    require_bf16(x, op, what);
    require_rank(x, 3, op, what);
    VIDI_CHECK(x.dim(2) % 2 == 0, op, ": head dimension must be even, got ", x.describe());
    VIDI_CHECK(theta > 0, op, ": theta must be positive, got ", theta);
}
}  // namespace

void CudaBackend::rope_(Tensor& x, int64_t pos0, double theta) {
    check_rope(x, theta, "rope_", "x [T, H, hd]");
    rope_inplace(ptr(x), x.dim(0), x.dim(1), x.dim(2), pos0, static_cast<float>(theta), stream_);
}

void CudaBackend::rope_and_cache_kv_(Tensor& q, Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache,
                                     const Tensor& pos, double theta) {
    const char* op = "rope_and_cache_kv_";
    check_rope(q, theta, op, "q [T, H, hd]");
    check_rope(k, theta, op, "k [T, KV, hd]");
    require_bf16(v, op, "v");
    require_bf16(k_cache, op, "k_cache");
    require_bf16(v_cache, op, "v_cache");
    check_rope_and_cache_kv(q, k, v, k_cache, v_cache);
    RopeCacheArgs a;
    a.q = ptr(q);
    a.k = ptr(k);
    a.v = ptr(v);
    a.k_cache = ptr(k_cache);
    a.v_cache = ptr(v_cache);
    a.pos = step_pos_ptr(pos, op);
    a.T = q.dim(0);
    a.H = q.dim(1);
    a.KV = k.dim(1);
    a.hd = q.dim(2);
    a.cache_rows = k_cache.dim(0);
    a.theta = static_cast<float>(theta);
    rope_and_cache(a, stream_);
}

Tensor CudaBackend::repeat_kv(const Tensor& v, int heads) {
    require_bf16(v, "repeat_kv", "v");
    require_rank(v, 3, "repeat_kv", "v [T, KV, hd]");
    VIDI_CHECK(heads > 0 && v.dim(1) > 0 && heads % v.dim(1) == 0, "repeat_kv: ", heads,
               " heads are not a multiple of the ", v.dim(1), " KV heads of ", v.describe());
    Tensor out = empty({v.dim(0), heads, v.dim(2)}, DType::bf16);
    cuda::repeat_kv(ptr(out), ptr(v), v.dim(0), v.dim(1), heads, v.dim(2), stream_);
    return out;
}

Tensor CudaBackend::embed(const QTensor& qtable, const Tensor& ids) {
    VIDI_CHECK(qtable.defined(), "embed: table is undefined");
    require_rank(qtable.values, 2, "embed", "table [V, D]");
    VIDI_CHECK(ids.defined() && ids.device() == Device::cuda && ids.dtype() == DType::i32 && ids.rank() == 1,
               "embed: ids must be i32 [T] on the GPU, got ", ids.describe());
    if (qtable.quantized()) return embed_quantized(qtable, ids);
    require_bf16(qtable.values, "embed", "table");
    const Tensor& table = qtable.values;
    const int64_t T = ids.numel();
    Tensor out = empty({T, table.dim(1)}, DType::bf16);
    if (T == 0) return out;
    cuda::embed(ptr(out), ptr(table), static_cast<const int32_t*>(ids.raw()), T, table.dim(0), table.dim(1), stream_);
    return out;
}

Tensor CudaBackend::transpose2d(const Tensor& x) {
    VIDI_CHECK(x.defined() && x.device() == Device::cuda, "transpose2d: expected a GPU tensor");
    require_rank(x, 2, "transpose2d", "x");
    const size_t es = dtype_size(x.dtype());
    VIDI_CHECK(es == 2 || es == 4, "transpose2d: unsupported dtype ", x.describe());
    Tensor out = empty({x.dim(1), x.dim(0)}, x.dtype());
    cuda::transpose2d(out.raw(), x.raw(), x.dim(0), x.dim(1), es, stream_);
    return out;
}

Tensor CudaBackend::im2col_1d(const Tensor& x, int k, int stride, int pad) {
    require_bf16(x, "im2col_1d", "x");
    require_rank(x, 2, "im2col_1d", "x [T, C]");
    VIDI_CHECK(k > 0 && stride > 0 && pad >= 0, "im2col_1d: bad kernel ", k, " / stride ", stride, " / pad ", pad);
    const int64_t T = x.dim(0), C = x.dim(1);
    VIDI_CHECK(T + 2 * pad >= k, "im2col_1d: input ", x.describe(), " is shorter than the kernel ", k);
    const int64_t T_out = (T + 2 * pad - k) / stride + 1;
    Tensor out = empty({T_out, C * k}, DType::bf16);
    cuda::im2col_1d(ptr(out), ptr(x), T, C, k, stride, pad, T_out, stream_);
    return out;
}

Tensor CudaBackend::im2col_2d(const Tensor& x, int k, int stride) {
    require_bf16(x, "im2col_2d", "x");
    require_rank(x, 4, "im2col_2d", "x [F, H, W, C]");
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(k > 0 && stride > 0 && k <= H && k <= W, "im2col_2d: kernel ", k, " / stride ", stride,
               " does not fit ", x.describe());
    Tensor out = empty({F, (H - k) / stride + 1, (W - k) / stride + 1, C * k * k}, DType::bf16);
    cuda::im2col_2d(ptr(out), ptr(x), F, H, W, C, k, stride, stream_);
    return out;
}

Tensor CudaBackend::patchify(const Tensor& pixels, int p) {
    require_bf16(pixels, "patchify", "pixels");
    require_rank(pixels, 4, "patchify", "pixels [N, C, S, S]");
    const int64_t N = pixels.dim(0), C = pixels.dim(1), S = pixels.dim(2);
    // Leftover pixels past the last whole patch are dropped, as a stride-p Conv2d does (384 = 27·14 + 6).
    VIDI_CHECK(pixels.dim(3) == S && p > 0 && S >= p, "patchify: ", pixels.describe(),
               " is not square or smaller than one ", p, "×", p, " patch");
    Tensor out = empty({N, (S / p) * (S / p), C * p * p}, DType::bf16);
    cuda::patchify(ptr(out), ptr(pixels), N, C, S, p, stream_);
    return out;
}

Tensor CudaBackend::space_to_depth(const Tensor& x, int p) {
    require_bf16(x, "space_to_depth", "x");
    require_rank(x, 4, "space_to_depth", "x [F, H, W, C]");
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(p > 0 && H % p == 0 && W % p == 0, "space_to_depth: ", x.describe(), " is not divisible by ", p);
    Tensor out = empty({F, H / p, W / p, C * p * p}, DType::bf16);
    cuda::space_to_depth(ptr(out), ptr(x), F, H, W, C, p, stream_);
    return out;
}

Tensor CudaBackend::pad_grid(const Tensor& x, int bottom, int right) {
    require_bf16(x, "pad_grid", "x");
    require_rank(x, 4, "pad_grid", "x [F, H, W, C]");
    VIDI_CHECK(bottom >= 0 && right >= 0, "pad_grid: negative padding ", bottom, ", ", right);
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    Tensor out = empty({F, H + bottom, W + right, C}, DType::bf16);
    cuda::pad_grid(ptr(out), ptr(x), F, H, W, C, bottom, right, stream_);
    return out;
}

Tensor CudaBackend::resize_bilinear(const Tensor& x, int oh, int ow, bool align_corners) {
    require_bf16(x, "resize_bilinear", "x");
    require_rank(x, 4, "resize_bilinear", "x [F, H, W, C]");
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(oh > 0 && ow > 0 && H > 0 && W > 0, "resize_bilinear: cannot resize ", x.describe(), " to ", oh, "×",
               ow);
    Tensor out = empty({F, oh, ow, C}, DType::bf16);
    cuda::resize_bilinear(ptr(out), ptr(x), F, H, W, C, oh, ow, align_corners, stream_);
    return out;
}

}  // namespace vidi::cuda
