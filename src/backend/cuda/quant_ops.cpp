// CudaBackend's quantised-storage ops (core/qtensor.h): uploading quantised weights,
// quantising activations on the device, linear and embed with int8/int4 weights, and the
// fused GEMVs of a decoding step (float or quantised weights): the MLP's gate/up with its GLU,
// and attention's q/k/v in one launch.
#include <algorithm>
#include <optional>
#include <utility>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_checks.h"

namespace vidi::cuda {
namespace {

// Upper bound of the 16-bit scratch that the large-M linear dequantises weight rows into.
constexpr size_t kSlabBytes = size_t(32) << 20;

// A quantised tensor's parts must agree with its bits and group (host or device alike).
void check_layout(const QTensor& q, const char* op, const char* what) {
    VIDI_CHECK(q.bits == 8 || q.bits == 4, op, ": ", what, " ", q.describe(), " has ", q.bits,
               " bits (8 or 4 supported)");
    VIDI_CHECK(q.values.defined() && q.scales.defined(), op, ": ", what, " ", q.describe(),
               " lacks its values or scales");
    VIDI_CHECK(q.values.dtype() == (q.bits == 8 ? DType::i8 : DType::u8), op, ": ", what, " ", q.describe(),
               " must store its codes as ", q.bits == 8 ? "i8" : "u8", ", got ", q.values.describe());
    VIDI_CHECK(q.scales.dtype() == DType::f32, op, ": ", what, " ", q.describe(), " must have f32 scales, got ",
               q.scales.describe());
    VIDI_CHECK(q.values.rank() >= 1 && q.scales.rank() == q.values.rank(), op, ": ", what, " ", q.describe(),
               ": scales ", q.scales.describe(), " do not match values ", q.values.describe());
    const int64_t K = q.dim(-1);
    VIDI_CHECK(q.group > 0 && K % q.group == 0 && (q.bits == 8 || q.group % 2 == 0), op, ": ", what, " ",
               q.describe(), ": group ", q.group, " does not divide rows of ", K);
    Shape want = q.values.shape();
    want.back() = K / q.group;
    VIDI_CHECK(q.scales.shape() == want, op, ": ", what, " ", q.describe(), ": scales ", q.scales.describe(),
               " should be ", shape_str(want));
}

void check_on_device(const QTensor& q, const char* op, const char* what) {
    VIDI_CHECK(q.values.device() == Device::cuda && q.scales.device() == Device::cuda, op, ": ", what, " ",
               q.describe(), " is in host memory (use linear_weight() first)");
}

QuantView view_of(const QTensor& q) {
    QuantView v;
    v.codes = q.values.raw();
    v.scales = static_cast<const float*>(q.scales.raw());
    v.bits = q.bits;
    v.K = q.dim(-1);
    v.group = q.group;
    return v;
}

// A weight as the GEMV reads it: quantised codes and scales, or 16-bit values as bits 16.
QuantView gemv_view(const QTensor& w) {
    return w.quantized() ? view_of(w) : float_gemv_view(w.values.raw(), w.dim(-1));
}

// Whether x can be the GEMV's input: rows of the activation dtype on the GPU.
bool gemv_input(const Tensor& x, DType act) {
    return x.defined() && x.device() == Device::cuda && x.dtype() == act && x.rank() >= 1 && x.dim(-1) > 0;
}

// The GEMV's view of w [N, K] for x's M rows of K when the GEMV takes them: w of x's dtype or
// quantised on the GPU (a quantised one's layout checked, naming `op` and `what`).
std::optional<QuantView> gemv_weight(const QTensor& w, const Tensor& x, const char* op, const char* what) {
    const int64_t K = x.dim(-1), M = x.numel() / K;
    if (!w.defined() || w.rank() != 2 || w.dim(1) != K || w.values.device() != Device::cuda) return std::nullopt;
    if (!w.quantized() && w.values.dtype() != x.dtype()) return std::nullopt;
    if (w.quantized()) check_layout(w, op, what), check_on_device(w, op, what);
    const QuantView v = gemv_view(w);
    if (!quant_gemv_supported(v, x.raw(), M)) return std::nullopt;
    return v;
}

bool same_format(const QuantView& a, const QuantView& b) { return a.bits == b.bits && a.group == b.group; }

}  // namespace

std::optional<std::pair<Tensor, Tensor>> CudaBackend::fp8_gate_up(const Tensor& x, const QTensor& gate,
                                                                 const QTensor& up) {
    // (fp8_input checks x and gate; up must match gate.)
    if (gate.quantized() || up.quantized() || gate.shape() != up.shape() || gate.values.dtype() != up.values.dtype() ||
        up.device() != Device::cuda)
        return std::nullopt;
    const std::optional<Fp8Rows> xq = fp8_input(x, gate.values);
    if (!xq) return std::nullopt;
    const Shape shape = with_last(x.shape(), gate.dim(0));
    std::pair<Tensor, Tensor> gu{empty(shape, act_), empty(shape, act_)};
    linear_fp8(gu.first, *xq, gate.values, Tensor(), Epilogue::none);
    linear_fp8(gu.second, *xq, up.values, Tensor(), Epilogue::none);
    return gu;
}

Tensor CudaBackend::linear_glu(const Tensor& x, const QTensor& gate, const QTensor& up, Glu kind) {
    // A few rows (a decoding step) read both weights in one GEMV launch with the GLU at its end.
    if (gemv_input(x, act_) && gate.defined() && up.defined() && gate.shape() == up.shape()) {
        const auto g = gemv_weight(gate, x, "linear_glu", "gate"), u = gemv_weight(up, x, "linear_glu", "up");
        if (g && u && same_format(*g, *u)) {
            const int64_t N = gate.dim(0), M = x.numel() / x.dim(-1);
            Tensor y = empty(with_last(x.shape(), N), act_);
            with_type(act_, [&]<class T>() {
                quant_gemv<T>(y.raw(), false, ptr<T>(x), *g, nullptr, M, N, stream_, &*u, kind == Glu::silu);
            });
            return y;
        }
    }
    // Many rows in an FP8 encode: x converted once for both products.
    if (auto gu = fp8_gate_up(x, gate, up)) return glu(gu->first, gu->second, kind);
    return Backend::linear_glu(x, gate, up, kind);  // checks the arguments on its way
}

Tensor CudaBackend::glu_mlp(const Tensor& x, const QTensor& gate, const QTensor& up, const QTensor& down, Glu kind) {
    // An FP8 encode: x converted once for gate and up, and their gated product straight to
    // FP8 codes for down (glu_rows_e4m3), where the two-step path writes it in 16 bits and
    // reads it back to convert it.
    if (gate.defined() && gate.rank() == 2 && down.defined() && !down.quantized() && down.rank() == 2 &&
        down.dim(1) == gate.dim(0) && fp8_takes(down.values))
        if (auto gu = fp8_gate_up(x, gate, up)) {
            auto& [g, u] = *gu;
            const int64_t M = g.numel() / g.dim(-1), I = g.dim(-1);
            Fp8Rows hq = fp8_rows(M, I, false);
            with_type(act_, [&]<class T>() {
                glu_rows_e4m3<T>(ptr<uint8_t>(hq.codes), ptr<float>(hq.scales), ptr<T>(g), ptr<T>(u), M, I,
                                 kind == Glu::silu, stream_);
            });
            g = Tensor(), u = Tensor();  // their memory serves the output
            Tensor y = empty(with_last(x.shape(), down.dim(0)), act_);
            linear_fp8(y, hq, down.values, Tensor(), Epilogue::none);
            return y;
        }
    return Backend::glu_mlp(x, gate, up, down, kind);
}

void CudaBackend::linear_into_(const std::vector<Tensor*>& outs, const Tensor& x,
                               const std::vector<const QTensor*>& ws) {
    // A few rows (a decoding step's q, k and v) read every weight in one GEMV launch when the
    // weights share a format; anything else takes the checked path of one linear() each.
    if (!ws.empty() && ws.size() <= static_cast<size_t>(kGemvMaxOutputs) && outs.size() == ws.size() &&
        gemv_input(x, act_)) {
        const int64_t M = x.numel() / x.dim(-1);
        GemvOutput g[kGemvMaxOutputs];
        size_t taken = 0;
        for (; taken < ws.size(); ++taken) {
            const QTensor* w = ws[taken];
            const Tensor* out = outs[taken];
            const auto v = w ? gemv_weight(*w, x, "linear_into_", "weight") : std::nullopt;
            if (!v || (taken > 0 && !same_format(*v, g[0].w)) || !out || !out->defined() ||
                out->device() != Device::cuda || out->dtype() != act_ || out->numel() != M * w->dim(0))
                break;
            g[taken] = GemvOutput{out->raw(), *v, w->dim(0)};
        }
        if (taken == ws.size()) {
            with_type(act_, [&]<class T>() { quant_gemv_many<T>(g, static_cast<int>(ws.size()), ptr<T>(x), M, stream_); });
            return;
        }
    }
    // Many rows: each product straight into its output (GEMM), and in an FP8 encode x
    // converted once for all of them.
    if (!ws.empty() && outs.size() == ws.size() && gemv_input(x, act_)) {
        const int64_t K = x.dim(-1), M = x.numel() / K;
        bool direct = true;
        for (size_t i = 0; i < ws.size() && direct; ++i)
            direct = ws[i] && !ws[i]->quantized() && ws[i]->rank() == 2 && ws[i]->dim(1) == K &&
                     ws[i]->values.dtype() == act_ && ws[i]->device() == Device::cuda && outs[i] &&
                     outs[i]->defined() && outs[i]->device() == Device::cuda && outs[i]->dtype() == act_ &&
                     outs[i]->numel() == M * ws[i]->dim(0) && !float_gemv_takes(x, ws[i]->values, M);
        if (direct) {
            bool fp8 = true;
            for (const QTensor* w : ws) fp8 = fp8 && fp8_takes(w->values);
            const std::optional<Fp8Rows> xq = fp8 ? fp8_input(x, ws[0]->values) : std::nullopt;
            for (size_t i = 0; i < ws.size(); ++i) {
                if (xq) linear_fp8(*outs[i], *xq, ws[i]->values, Tensor(), Epilogue::none);
                else gemm_->linear(outs[i]->raw(), x.raw(), ws[i]->values.raw(), nullptr, M, ws[i]->dim(0), K,
                                   {act_, act_}, stream_);
            }
            return;
        }
    }
    Backend::linear_into_(outs, x, ws);
}

QTensor CudaBackend::linear_weight(const QTensor& host) {
    VIDI_CHECK(host.defined(), "cuda linear_weight(): undefined tensor");
    if (!host.quantized()) return weight(host.values);
    check_layout(host, "linear_weight", "weight");
    // Codes and scales go up as stored: the kernels read the packed layout directly (and
    // dequantise to the activation dtype).
    auto up = [&](const Tensor& t) { return t.on_host() ? to_device_raw(t, true) : t; };
    return QTensor(up(host.values), up(host.scales), host.bits, host.group);
}

QTensor CudaBackend::quantize(const Tensor& x, const QuantFormat& format) {
    require_act(x, "cuda quantize", "x");
    VIDI_CHECK(format.bits == 8 || format.bits == 4, "cuda quantize: ", format.name(),
               " is not a quantised format (int8 or int4)");
    VIDI_CHECK(x.rank() >= 1, "cuda quantize: needs at least one dimension, got ", x.describe());
    const int64_t K = x.dim(-1), rows = K ? x.numel() / K : 0;
    VIDI_CHECK(format.fits(K), "cuda quantize: rows of ", K, " values (", x.describe(), ") cannot be stored as ",
               format.name());
    // Two kinds of layout: groups of one row (weights, media values, int8 keys) and 4-bit
    // columns over blocks of rows with zero points (media keys, media_kv_format).
    const bool columns = format.bits == 4 && format.group == 1 && format.zero_points && format.block >= 1 &&
                         format.scale_dtype == DType::f16 && x.rank() >= 2 && K % 2 == 0;
    VIDI_CHECK(columns || (format.block == 1 && !format.zero_points &&
                           (format.scale_dtype == DType::f32 || format.scale_dtype == DType::f16)),
               "cuda quantize: ", format.name(), " is not a layout the GPU quantises (groups of a row, or 4-bit "
               "columns over blocks of rows with zero points and f16 scales)");
    QTensor q = empty_quantized(x.shape(), format);
    with_type(act_, [&]<class T>() {
        if (columns)
            quantize_column_blocks(static_cast<uint8_t*>(q.values.raw()), ptr<fp16>(q.scales), ptr<fp16>(q.zeros),
                                   ptr<T>(x), x.dim(0), x.numel() / std::max<int64_t>(x.dim(0), 1), format.block, stream_);
        else
            quantize_rows(q.values.raw(), q.scales.raw(), ptr<T>(x), rows, K, format.bits, q.group, stream_,
                          format.scale_dtype == DType::f16);
    });
    return q;
}

QTensor CudaBackend::quantized_weight(const Tensor& host, const QuantFormat& format) {
    // bf16 checkpoints (the usual case) are quantised here, slice by slice, with the kernel
    // that reproduces the host quantiser bit for bit (from the stored bf16 values, whatever
    // the activation dtype); other dtypes take the host path.
    if (!host.defined() || host.rank() != 2 || host.dtype() != DType::bf16 || !format.quantized() ||
        !format.fits(host.dim(1)))
        return Backend::quantized_weight(host, format);
    const int64_t N = host.dim(0), K = host.dim(1);
    const int g = format.group_for(K);
    QTensor q(allocate({N, format.bits == 8 ? K : K / 2}, format.bits == 8 ? DType::i8 : DType::u8, true),
              allocate({N, K / g}, DType::f32, true), format.bits, g);
    const int64_t slice = std::max<int64_t>(1, static_cast<int64_t>(kSlabBytes / (size_t(K) * 2)));
    const int64_t code_row = K * format.bits / 8, groups = K / g;
    for (int64_t r0 = 0; r0 < N; r0 += slice) {
        const int64_t n = std::min(slice, N - r0);
        const Tensor rows = host.on_host() ? to_device_raw(host.rows(r0, r0 + n)) : host.rows(r0, r0 + n);
        quantize_rows(static_cast<uint8_t*>(q.values.raw()) + r0 * code_row,
                      static_cast<float*>(q.scales.raw()) + r0 * groups, ptr<bf16>(rows), n, K, format.bits, g, stream_);
    }
    return q;
}

Tensor CudaBackend::linear_quantized(const Tensor& x, const QTensor& w, const Tensor& bias, DType y_dtype) {
    check_layout(w, "linear", "weight");
    check_on_device(w, "linear", "weight");
    require_act(x, "linear", "x");
    VIDI_CHECK(w.rank() == 2, "linear: weight must have rank 2, got ", w.describe());
    const int64_t K = w.dim(1), N = w.dim(0);
    VIDI_CHECK(x.rank() >= 1 && x.dim(-1) == K, "linear: x ", x.describe(), " does not match weight ", w.describe(),
               " (expected x[..., ", K, "])");
    const int64_t M = x.numel() / K;
    if (bias.defined()) {
        VIDI_CHECK(bias.device() == Device::cuda && bias.dtype() == act_ && bias.numel() == N && y_dtype == act_,
                   "linear: bias ", bias.describe(), " does not match weight ", w.describe(), " (", dtype_name(act_),
                   " [", N, "] on the GPU, into activations)");
    }
    VIDI_CHECK(y_dtype == act_ || y_dtype == DType::f32, "linear: cannot write ", dtype_name(y_dtype));
    Tensor y = empty(with_last(x.shape(), N), y_dtype);
    if (M == 0 || N == 0) return y;
    const QuantView wv = view_of(w);
    with_type(act_, [&]<class T>() {
        const T* b = bias.defined() ? ptr<T>(bias) : nullptr;
        if (quant_gemv_supported(wv, x.raw(), M)) {
            quant_gemv<T>(y.raw(), y_dtype == DType::f32, ptr<T>(x), wv, b, M, N, stream_);
            return;
        }
        // Many rows (prefill, vision batches) are compute bound: cuBLAS speed matters more than
        // weight bytes. So a slab of weight rows is dequantised into a bounded 16-bit scratch and
        // multiplied into its columns of y (row pitch N) by the GEMM, slab after slab: the
        // extra traffic is small next to the GEMM, and no 16-bit copy of the whole layer exists.
        int64_t slab = std::clamp<int64_t>(static_cast<int64_t>(kSlabBytes / (size_t(K) * 2)), 1, N);
        if (slab > 64 && slab < N) slab -= slab % 64;  // keeps y's column offsets 128-byte aligned
        Tensor scratch = empty({slab, K}, act_);
        const size_t y_size = dtype_size(y_dtype);
        for (int64_t n0 = 0; n0 < N; n0 += slab) {
            const int64_t rows = std::min(slab, N - n0);
            dequantize_rows(ptr<T>(scratch), wv, n0, nullptr, 0, rows, stream_);
            gemm_->linear(static_cast<char*>(y.raw()) + n0 * y_size, x.raw(), scratch.raw(), b ? b + n0 : nullptr, M,
                          rows, K, {act_, y_dtype}, stream_, N);
        }
    });
    return y;
}

Tensor CudaBackend::embed_quantized(const QTensor& table, const Tensor& dev_ids) {
    check_layout(table, "embed", "table");
    check_on_device(table, "embed", "table");
    const int64_t D = table.dim(1), n = dev_ids.numel();
    Tensor out = empty({n, D}, act_);
    if (n > 0)
        with_type(act_, [&]<class T>() {
            dequantize_rows(ptr<T>(out), view_of(table), 0, static_cast<const int32_t*>(dev_ids.raw()), table.dim(0), n,
                            stream_);
        });
    return out;
}

}  // namespace vidi::cuda
