// CudaBackend's ops: argument checks (each failure a vidi::Error naming the op and the
// tensor), output allocation, then the kernel launchers of kernels.h / the GEMM.
#include <algorithm>
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

// x[..., K] · w[N, K]ᵀ + bias[N] with a float weight: the arguments checked, x, w and bias of
// one dtype `in` (the activations', or f32).
LinearShape check_float_linear(const Tensor& x, const Tensor& w, const Tensor& bias, DType in, const char* op) {
    require_dtype(x, in, op, "x");
    require_dtype(w, in, op, "weight");
    require_rank(w, 2, op, "weight");
    VIDI_CHECK(x.rank() >= 1 && x.dim(-1) == w.dim(1), op, ": x ", x.describe(), " does not match weight ",
               w.describe(), " (expected x[..., ", w.dim(1), "])");
    const int64_t K = w.dim(1), N = w.dim(0), M = K ? x.numel() / K : 0;
    VIDI_CHECK(K > 0, op, ": weight ", w.describe(), " has no input features");
    if (bias.defined()) {
        require_dtype(bias, in, op, "bias");
        VIDI_CHECK(bias.numel() == N, op, ": bias ", bias.describe(), " does not match weight ", w.describe());
    }
    return {M, N, K};
}

}  // namespace

bool float_gemv_takes(const Tensor& x, const Tensor& w, int64_t M) {
    return x.dtype() != DType::f32 && quant_gemv_supported(float_gemv_view(w.raw(), w.dim(1)), x.raw(), M);
}

void CudaBackend::require_act(const Tensor& t, const char* op, const char* what) const {
    require_dtype(t, act_, op, what);
}

Tensor CudaBackend::linear_gelu(const Tensor& x, const QTensor& w, const Tensor& bias, Gelu kind) {
    if (w.quantized() || kind != Gelu::tanh || x.dtype() != act_) return Backend::linear_gelu(x, w, bias, kind);
    const auto [M, N, K] = check_float_linear(x, w.values, bias, act_, "linear_gelu");
    if (M == 0 || float_gemv_takes(x, w.values, M)) return Backend::linear_gelu(x, w, bias, kind);
    Tensor y = empty(with_last(x.shape(), N), act_);
    if (N > 0 && !try_linear_fp8(y, x, w.values, bias, Epilogue::gelu_tanh))
        gemm_->linear(y.raw(), x.raw(), w.values.raw(), bias_or_null(bias), M, N, K, {act_, act_}, stream_, 0,
                      Epilogue::gelu_tanh);
    return y;
}

void CudaBackend::linear_add_(Tensor& y, const Tensor& x, const QTensor& w, const Tensor& bias) {
    if (w.quantized() || x.dtype() != act_) return Backend::linear_add_(y, x, w, bias);
    const auto [M, N, K] = check_float_linear(x, w.values, bias, act_, "linear_add_");
    if (M == 0 || float_gemv_takes(x, w.values, M)) return Backend::linear_add_(y, x, w, bias);
    require_act(y, "linear_add_", "y");
    VIDI_CHECK(y.shape() == with_last(x.shape(), N), "linear_add_: y ", y.describe(), " does not match x ",
               x.describe(), " · weight ", w.values.describe(), "ᵀ");
    const auto* yb = static_cast<const char*>(y.raw());
    const auto* xb = static_cast<const char*>(x.raw());
    VIDI_CHECK(yb + y.nbytes() <= xb || xb + x.nbytes() <= yb, "linear_add_: y ", y.describe(),
               " overlaps the input x (the GEMM would read what it writes)");
    if (N > 0 && !try_linear_fp8(y, x, w.values, bias, Epilogue::accumulate))
        gemm_->linear(y.raw(), x.raw(), w.values.raw(), bias_or_null(bias), M, N, K, {act_, act_}, stream_, 0,
                      Epilogue::accumulate);
}

Tensor CudaBackend::linear_float(const Tensor& x, const Tensor& w, const Tensor& bias, DType y_dtype, const char* op) {
    // f32 x takes f32 weights (positional MLPs); activations take weights of their dtype.
    const DType in = x.defined() && x.dtype() == DType::f32 ? DType::f32 : act_;
    const auto [M, N, K] = check_float_linear(x, w, bias, in, op);
    VIDI_CHECK(y_dtype == in || y_dtype == DType::f32, op, ": cannot write ", dtype_name(y_dtype), " from ",
               dtype_name(in));
    VIDI_CHECK(!bias.defined() || y_dtype == in, op, ": a bias with an f32 output from ", dtype_name(in), " inputs");
    Tensor y = empty(with_last(x.shape(), N), y_dtype);
    if (M == 0 || N == 0 || try_linear_fp8(y, x, w, bias, Epilogue::none)) return y;
    if (float_gemv_takes(x, w, M))
        with_type(act_, [&]<class T>() {
            quant_gemv<T>(y.raw(), y_dtype == DType::f32, ptr<T>(x), float_gemv_view(w.raw(), K),
                          static_cast<const T*>(bias_or_null(bias)), M, N, stream_);
        });
    else
        gemm_->linear(y.raw(), x.raw(), w.raw(), bias_or_null(bias), M, N, K, {in, y_dtype}, stream_);
    return y;
}

int CudaBackend::linear_row_class(int64_t rows) const {
    // Past the few-row GEMV every linear runs on the GEMM, whose algorithm up to
    // kRowInvariantRows rows is one per shape (Gemm::linear); the GEMV's rows are their own.
    return rows > std::max(kFloatGemvMaxRows, kQuantGemvMaxRows) && rows <= kRowInvariantRows ? 0 : -1;
}

Tensor CudaBackend::linear(const Tensor& x, const QTensor& wq, const Tensor& bias) {
    if (wq.quantized()) return linear_quantized(x, wq, bias, act_);
    return linear_float(x, wq.values, bias, x.defined() && x.dtype() == DType::f32 ? DType::f32 : act_, "linear");
}

Tensor CudaBackend::logits(const Tensor& x, const QTensor& w, float softcap) {
    require_act(x, "logits", "x");
    Tensor y = w.quantized() ? linear_quantized(x, w, Tensor(), DType::f32)
                             : linear_float(x, w.values, Tensor(), DType::f32, "logits");
    if (softcap > 0) softcap_(y, softcap);
    return y;
}

void CudaBackend::add_(Tensor& x, const Tensor& y) {
    require_act(x, "add_", "x");
    require_act(y, "add_", "y");
    VIDI_CHECK(x.shape() == y.shape(), "add_: shapes differ: ", x.describe(), " and ", y.describe());
    with_type(act_, [&]<class T>() { add_inplace(ptr<T>(x), ptr<T>(y), x.numel(), stream_); });
}

void CudaBackend::add_broadcast_(Tensor& x, const Tensor& y) {
    require_act(x, "add_broadcast_", "x");
    require_act(y, "add_broadcast_", "y");
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
    with_type(act_, [&]<class T>() { add_broadcast_inplace(ptr<T>(x), ptr<T>(y), xs, ys, xs[3], stream_); });
}

namespace {
// An element-wise op's input: the activations, or f32 (logits, the positional MLPs).
void require_act_or_f32(const Tensor& x, DType act, const char* op) {
    require_dtype(x, x.defined() && x.dtype() == DType::f32 ? DType::f32 : act, op, "x");
}
}  // namespace

void CudaBackend::scale_(Tensor& x, float s) {
    require_act_or_f32(x, act_, "scale_");
    with_type<true>(x.dtype(), [&]<class T>() { scale_inplace(ptr<T>(x), x.numel(), s, stream_); });
}

void CudaBackend::gelu_(Tensor& x, Gelu kind) {
    require_act_or_f32(x, act_, "gelu_");
    with_type<true>(x.dtype(), [&]<class T>() { gelu_inplace(ptr<T>(x), x.numel(), kind == Gelu::tanh, stream_); });
}

void CudaBackend::softcap_(Tensor& x, float cap) {
    require_act_or_f32(x, act_, "softcap_");
    VIDI_CHECK(cap > 0, "softcap_: cap must be positive, got ", cap);
    with_type<true>(x.dtype(), [&]<class T>() { softcap_inplace(ptr<T>(x), x.numel(), cap, stream_); });
}

Tensor CudaBackend::glu(const Tensor& gate, const Tensor& up, Glu kind) {
    require_act(gate, "glu", "gate");
    require_act(up, "glu", "up");
    VIDI_CHECK(gate.shape() == up.shape(), "glu: shapes differ: ", gate.describe(), " and ", up.describe());
    Tensor y = empty(gate.shape(), act_);
    with_type(act_, [&]<class T>() {
        cuda::glu(ptr<T>(y), ptr<T>(gate), ptr<T>(up), y.numel(), kind == Glu::silu, stream_);
    });
    return y;
}

namespace {
// A residual stream: the activation dtype or f32 on the GPU.
void require_residual(const Tensor& x, DType act, const char* op) {
    VIDI_CHECK(x.defined() && x.device() == Device::cuda && (x.dtype() == act || x.dtype() == DType::f32), op,
               ": x must be a ", dtype_name(act), " or f32 tensor on the GPU, got ", x.describe());
}

void check_norm_weight(const Tensor& x, const Tensor& w, NormWeight mode, DType act, const char* op) {
    VIDI_CHECK(x.rank() >= 1, op, ": scalar input");
    if (mode != NormWeight::none) {
        require_dtype(w, act, op, "weight");
        VIDI_CHECK(w.numel() == x.dim(-1), op, ": weight ", w.describe(), " does not match feature size ", x.dim(-1));
    }
}

// x += rms_norm(y): y a sub-layer's output (activations), x the residual stream of y's shape.
void check_add_rms_norm(const Tensor& x, const Tensor& y, const Tensor& w, NormWeight mode, DType act,
                        const char* op) {
    require_dtype(y, act, op, "y");
    check_norm_weight(y, w, mode, act, op);
    require_residual(x, act, op);
    VIDI_CHECK(x.shape() == y.shape(), op, ": shapes differ: ", x.describe(), " and ", y.describe());
}

template <class T>
const T* weight_or_null(const Tensor& w, NormWeight mode) {
    return mode == NormWeight::none ? nullptr : ptr<T>(w);
}
}  // namespace

Tensor CudaBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, NormWeight mode) {
    require_residual(x, act_, "rms_norm");
    check_norm_weight(x, w, mode, act_, "rms_norm");
    const int64_t D = x.dim(-1), rows = D ? x.numel() / D : 0;
    Tensor y = empty(x.shape(), act_);
    with_type(act_, [&]<class T>() {
        cuda::rms_norm(y.raw(), y.dtype(), x.raw(), x.dtype(), weight_or_null<T>(w, mode), rows, D, eps,
                       static_cast<int>(mode), stream_);
    });
    return y;
}

void CudaBackend::add_rms_norm_(Tensor& x, const Tensor& y, const Tensor& w, float eps, NormWeight mode) {
    check_add_rms_norm(x, y, w, mode, act_, "add_rms_norm_");
    const int64_t D = y.dim(-1), rows = D ? y.numel() / D : 0;
    with_type(act_, [&]<class T>() {
        cuda::rms_norm(x.raw(), x.dtype(), y.raw(), y.dtype(), weight_or_null<T>(w, mode), rows, D, eps,
                       static_cast<int>(mode), stream_, true);
    });
}

Tensor CudaBackend::add_then_norm_(Tensor& x, const Tensor& y, const Tensor& w_next, float eps, NormWeight mode) {
    require_act(y, "add_then_norm_", "y");
    require_residual(x, act_, "add_then_norm_");
    VIDI_CHECK(x.shape() == y.shape(), "add_then_norm_: shapes differ: ", x.describe(), " and ", y.describe());
    check_norm_weight(x, w_next, mode, act_, "add_then_norm_");
    const int64_t D = y.dim(-1), rows = D ? y.numel() / D : 0;
    Tensor next = empty(x.shape(), act_);
    with_type(act_, [&]<class T>() {
        cuda::add_then_rms_norm(x.raw(), x.dtype(), ptr<T>(y), ptr<T>(next), weight_or_null<T>(w_next, mode), rows, D,
                                eps, static_cast<int>(mode), stream_);
    });
    return next;
}

Tensor CudaBackend::add_rms_norm_then_norm_(Tensor& x, const Tensor& y, const Tensor& w, const Tensor& w_next,
                                            float eps, NormWeight mode) {
    check_add_rms_norm(x, y, w, mode, act_, "add_rms_norm_then_norm_");
    check_norm_weight(x, w_next, mode, act_, "add_rms_norm_then_norm_");
    const int64_t D = y.dim(-1), rows = D ? y.numel() / D : 0;
    Tensor next = empty(x.shape(), act_);
    with_type(act_, [&]<class T>() {
        cuda::rms_norm(x.raw(), x.dtype(), y.raw(), y.dtype(), weight_or_null<T>(w, mode), rows, D, eps,
                       static_cast<int>(mode), stream_, true, ptr<T>(next), weight_or_null<T>(w_next, mode));
    });
    return next;
}

std::vector<TopPick> CudaBackend::top_picks(const Tensor& x) {
    require_act_or_f32(x, act_, "top_picks");
    VIDI_CHECK(x.rank() >= 1 && x.dim(-1) > 0 && x.dim(-1) < (int64_t(1) << 31),
               "top_picks: expected logits [rows, N > 0], got ", x.describe());
    const int64_t N = x.dim(-1), rows = x.numel() / N;
    Tensor found = empty({2 * rows}, DType::i32);  // the ids, then the margins' bits
    int32_t* ids = static_cast<int32_t*>(found.raw());
    with_type<true>(x.dtype(), [&]<class T>() {
        cuda::top_pick(ids, reinterpret_cast<float*>(ids + rows), ptr<T>(x), rows, N, stream_);
    });
    const Tensor host = to_host(found);
    std::vector<TopPick> picks(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
        picks[static_cast<size_t>(r)].id = host.data<int32_t>()[r];
        std::memcpy(&picks[static_cast<size_t>(r)].margin, host.data<int32_t>() + rows + r, sizeof(float));
    }
    return picks;
}

Tensor CudaBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
    require_act(x, "layer_norm", "x");
    require_act(w, "layer_norm", "weight");
    require_act(b, "layer_norm", "bias");
    VIDI_CHECK(x.rank() >= 1, "layer_norm: scalar input");
    const int64_t D = x.dim(-1), rows = D ? x.numel() / D : 0;
    VIDI_CHECK(w.numel() == D && b.numel() == D, "layer_norm: weight ", w.describe(), " / bias ", b.describe(),
               " do not match feature size ", D);
    Tensor y = empty(x.shape(), act_);
    with_type(act_, [&]<class T>() {
        cuda::layer_norm(ptr<T>(y), ptr<T>(x), ptr<T>(w), ptr<T>(b), rows, D, eps, stream_);
    });
    return y;
}

namespace {
void check_rope(const Tensor& x, DType act, double theta, const char* op, const char* what) {
    require_dtype(x, act, op, what);
    require_rank(x, 3, op, what);
    VIDI_CHECK(x.dim(2) % 2 == 0, op, ": head dimension must be even, got ", x.describe());
    VIDI_CHECK(theta > 0, op, ": theta must be positive, got ", theta);
}
}  // namespace

void CudaBackend::rope_(Tensor& x, int64_t pos0, double theta) {
    check_rope(x, act_, theta, "rope_", "x [T, H, hd]");
    with_type(act_, [&]<class T>() {
        rope_inplace(ptr<T>(x), x.dim(0), x.dim(1), x.dim(2), pos0, static_cast<float>(theta), stream_);
    });
}

void CudaBackend::rope_and_cache_kv_rows_(Tensor& q, Tensor& k, const Tensor& v, const std::vector<Tensor*>& k_caches,
                                          const std::vector<Tensor*>& v_caches, const Tensor& pos, double theta) {
    const char* op = "rope_and_cache_kv_rows_";
    check_rope(q, act_, theta, op, "q [B, H, hd]");
    check_rope(k, act_, theta, op, "k [B, KV, hd]");
    require_act(v, op, "v");
    const int64_t B = q.dim(0);
    VIDI_CHECK(k.dim(0) == B && v.shape() == k.shape() && static_cast<int64_t>(k_caches.size()) == B &&
                   static_cast<int64_t>(v_caches.size()) == B && pos.device() == Device::cuda &&
                   pos.dtype() == DType::i32 && pos.numel() == B,
               op, ": q ", q.describe(), ", k ", k.describe(), ", ", k_caches.size(), " caches and positions ",
               pos.describe(), " do not match");
    with_type(act_, [&]<class T>() {
        for (int64_t b0 = 0; b0 < B; b0 += kRopeRowsMax) {
            const int64_t b1 = std::min<int64_t>(B, b0 + kRopeRowsMax);
            RopeCacheRows<T> a;
            a.q = ptr<T>(q) + b0 * q.dim(1) * q.dim(2);
            a.k = ptr<T>(k) + b0 * k.dim(1) * k.dim(2);
            a.v = ptr<T>(v) + b0 * k.dim(1) * k.dim(2);
            for (int64_t b = b0; b < b1; ++b) {
                Tensor& kc = *k_caches[static_cast<size_t>(b)];
                Tensor& vc = *v_caches[static_cast<size_t>(b)];
                require_act(kc, op, "k_cache");
                require_act(vc, op, "v_cache");
                check_rope_and_cache_kv(q.rows(b, b + 1), k.rows(b, b + 1), v.rows(b, b + 1), kc, vc);
                a.k_cache[b - b0] = ptr<T>(kc);
                a.v_cache[b - b0] = ptr<T>(vc);
                a.cache_rows[b - b0] = kc.dim(0);
            }
            a.pos = static_cast<const int32_t*>(pos.raw()) + b0;
            a.B = b1 - b0;
            a.H = q.dim(1);
            a.KV = k.dim(1);
            a.hd = q.dim(2);
            a.theta = static_cast<float>(theta);
            rope_and_cache_rows(a, stream_);
        }
    });
}

void CudaBackend::rope_and_cache_kv_(Tensor& q, Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache,
                                     const Tensor& pos, double theta) {
    const char* op = "rope_and_cache_kv_";
    check_rope(q, act_, theta, op, "q [T, H, hd]");
    check_rope(k, act_, theta, op, "k [T, KV, hd]");
    require_act(v, op, "v");
    require_act(k_cache, op, "k_cache");
    require_act(v_cache, op, "v_cache");
    check_rope_and_cache_kv(q, k, v, k_cache, v_cache);
    with_type(act_, [&]<class T>() {
        RopeCacheArgs<T> a;
        a.q = ptr<T>(q);
        a.k = ptr<T>(k);
        a.v = ptr<T>(v);
        a.k_cache = ptr<T>(k_cache);
        a.v_cache = ptr<T>(v_cache);
        a.pos = step_pos_ptr(pos, op);
        a.T = q.dim(0);
        a.H = q.dim(1);
        a.KV = k.dim(1);
        a.hd = q.dim(2);
        a.cache_rows = k_cache.dim(0);
        a.theta = static_cast<float>(theta);
        rope_and_cache(a, stream_);
    });
}

Tensor CudaBackend::repeat_kv(const Tensor& v, int heads) {
    require_act(v, "repeat_kv", "v");
    require_rank(v, 3, "repeat_kv", "v [T, KV, hd]");
    VIDI_CHECK(heads > 0 && v.dim(1) > 0 && heads % v.dim(1) == 0, "repeat_kv: ", heads,
               " heads are not a multiple of the ", v.dim(1), " KV heads of ", v.describe());
    Tensor out = empty({v.dim(0), heads, v.dim(2)}, act_);
    cuda::repeat_kv(out.raw(), v.raw(), v.dim(0), v.dim(1), heads, v.dim(2), stream_);
    return out;
}

Tensor CudaBackend::embed(const QTensor& qtable, const Tensor& ids) {
    VIDI_CHECK(qtable.defined(), "embed: table is undefined");
    require_rank(qtable.values, 2, "embed", "table [V, D]");
    VIDI_CHECK(ids.defined() && ids.device() == Device::cuda && ids.dtype() == DType::i32 && ids.rank() == 1,
               "embed: ids must be i32 [T] on the GPU, got ", ids.describe());
    if (qtable.quantized()) return embed_quantized(qtable, ids);
    require_act(qtable.values, "embed", "table");
    const Tensor& table = qtable.values;
    const int64_t T = ids.numel();
    Tensor out = empty({T, table.dim(1)}, act_);
    if (T == 0) return out;
    cuda::embed(out.raw(), table.raw(), static_cast<const int32_t*>(ids.raw()), T, table.dim(0), table.dim(1), stream_);
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
    require_act(x, "im2col_1d", "x");
    require_rank(x, 2, "im2col_1d", "x [T, C]");
    VIDI_CHECK(k > 0 && stride > 0 && pad >= 0, "im2col_1d: bad kernel ", k, " / stride ", stride, " / pad ", pad);
    const int64_t T = x.dim(0), C = x.dim(1);
    VIDI_CHECK(T + 2 * pad >= k, "im2col_1d: input ", x.describe(), " is shorter than the kernel ", k);
    const int64_t T_out = (T + 2 * pad - k) / stride + 1;
    Tensor out = empty({T_out, C * k}, act_);
    cuda::im2col_1d(out.raw(), x.raw(), T, C, k, stride, pad, T_out, stream_);
    return out;
}

Tensor CudaBackend::im2col_2d(const Tensor& x, int k, int stride) {
    require_act(x, "im2col_2d", "x");
    require_rank(x, 4, "im2col_2d", "x [F, H, W, C]");
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(k > 0 && stride > 0 && k <= H && k <= W, "im2col_2d: kernel ", k, " / stride ", stride,
               " does not fit ", x.describe());
    Tensor out = empty({F, (H - k) / stride + 1, (W - k) / stride + 1, C * k * k}, act_);
    cuda::im2col_2d(out.raw(), x.raw(), F, H, W, C, k, stride, stream_);
    return out;
}

Tensor CudaBackend::patchify(const Tensor& pixels, int p) {
    require_act(pixels, "patchify", "pixels");
    require_rank(pixels, 4, "patchify", "pixels [N, C, S, S]");
    const int64_t N = pixels.dim(0), C = pixels.dim(1), S = pixels.dim(2);
    // Leftover pixels past the last whole patch are dropped, as a stride-p Conv2d does (384 = 27·14 + 6).
    VIDI_CHECK(pixels.dim(3) == S && p > 0 && S >= p, "patchify: ", pixels.describe(),
               " is not square or smaller than one ", p, "×", p, " patch");
    Tensor out = empty({N, (S / p) * (S / p), C * p * p}, act_);
    cuda::patchify(out.raw(), pixels.raw(), N, C, S, p, stream_);
    return out;
}

Tensor CudaBackend::space_to_depth(const Tensor& x, int p) {
    require_act(x, "space_to_depth", "x");
    require_rank(x, 4, "space_to_depth", "x [F, H, W, C]");
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(p > 0 && H % p == 0 && W % p == 0, "space_to_depth: ", x.describe(), " is not divisible by ", p);
    Tensor out = empty({F, H / p, W / p, C * p * p}, act_);
    cuda::space_to_depth(out.raw(), x.raw(), F, H, W, C, p, stream_);
    return out;
}

Tensor CudaBackend::pad_grid(const Tensor& x, int bottom, int right) {
    require_act(x, "pad_grid", "x");
    require_rank(x, 4, "pad_grid", "x [F, H, W, C]");
    VIDI_CHECK(bottom >= 0 && right >= 0, "pad_grid: negative padding ", bottom, ", ", right);
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    Tensor out = empty({F, H + bottom, W + right, C}, act_);
    cuda::pad_grid(out.raw(), x.raw(), F, H, W, C, bottom, right, stream_);
    return out;
}

Tensor CudaBackend::resize_bilinear(const Tensor& x, int oh, int ow, bool align_corners) {
    require_act(x, "resize_bilinear", "x");
    require_rank(x, 4, "resize_bilinear", "x [F, H, W, C]");
    const int64_t F = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
    VIDI_CHECK(oh > 0 && ow > 0 && H > 0 && W > 0, "resize_bilinear: cannot resize ", x.describe(), " to ", oh, "×",
               ow);
    Tensor out = empty({F, oh, ow, C}, act_);
    with_type(act_, [&]<class T>() {
        cuda::resize_bilinear(ptr<T>(out), ptr<T>(x), F, H, W, C, oh, ow, align_corners, stream_);
    });
    return out;
}

}  // namespace vidi::cuda
