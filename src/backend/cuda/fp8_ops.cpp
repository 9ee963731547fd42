// CudaBackend's FP8 matrix work (--compute fp8): operands as E4M3 codes with a scale a row,
// the FP8 GEMM, the towers' normed linears, and the weights' FP8 copies kept at load.
#include <algorithm>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_checks.h"

namespace vidi::cuda {

bool CudaBackend::fp8_takes(const Tensor& w) const {
    return w.device() == Device::cuda && w.dtype() == act_ && w.rank() == 2 && fp8_gemm_takes(w.dim(0), w.dim(1));
}

CudaBackend::Fp8Rows CudaBackend::fp8_rows(int64_t rows, int64_t K, bool for_model) {
    return {allocate({rows, K}, DType::u8, for_model), allocate({rows}, DType::f32, for_model)};
}

void CudaBackend::to_fp8_into(const Fp8Rows& q, const Tensor& t) {
    const int64_t K = t.dim(-1), rows = t.numel() / K;
    with_type(act_, [&]<class T>() {
        quantize_rows_e4m3<T>(ptr<uint8_t>(q.codes), ptr<float>(q.scales), ptr<T>(t), rows, K, stream_);
    });
}

CudaBackend::Fp8Rows CudaBackend::to_fp8(const Tensor& t, bool for_model) {
    const int64_t K = t.dim(-1);
    Fp8Rows q = fp8_rows(t.numel() / K, K, for_model);
    to_fp8_into(q, t);
    return q;
}

std::optional<CudaBackend::Fp8Rows> CudaBackend::fp8_input(const Tensor& x, const Tensor& w) {
    if (!fp8_now() || x.device() != Device::cuda || x.dtype() != act_ || x.rank() < 1 ||
        !fp8_takes(w) || x.dim(-1) != w.dim(1) || x.numel() / w.dim(1) < kFp8MinRows)
        return std::nullopt;
    return to_fp8(x);
}

void CudaBackend::linear_fp8(Tensor& y, const Fp8Rows& xq, const Tensor& w, const Tensor& bias, Epilogue epilogue) {
    const int64_t K = w.dim(1), N = w.dim(0), M = xq.codes.dim(0);
    VIDI_CHECK(y.dtype() == act_ && y.numel() == M * N, "FP8 linear: y ", y.describe(), " for ", M, " rows of ",
               w.describe());
    // The weight's kept copy (keep_fp8_copy), else its conversion now, into scratch.
    const auto kept = fp8_copies_.find(w.raw());
    const bool have = kept != fp8_copies_.end() && kept->second.source.shape() == w.shape() &&
                      kept->second.source.dtype() == w.dtype();
    const Fp8Rows wq = have ? kept->second.rows : to_fp8(w);
    gemm_->linear_fp8(y.raw(), xq.codes.raw(), ptr<float>(xq.scales), wq.codes.raw(), ptr<float>(wq.scales),
                      bias_or_null(bias), M, N, K, act_, stream_, 0, epilogue);
}

bool CudaBackend::normed_fp8_takes(const Tensor& x, const Tensor& w, const Tensor& b,
                                   std::span<const NormedLinear> linears) const {
    const int64_t D = x.rank() >= 1 ? x.dim(-1) : 0, rows = D ? x.numel() / D : 0;
    return fp8_encode() && rows >= kFp8MinRows && x.device() == Device::cuda && x.dtype() == act_ &&
           w.dtype() == act_ && b.dtype() == act_ && w.numel() == D && b.numel() == D &&
           layer_norm_warp_takes(x.raw(), w.raw(), b.raw(), D) &&
           std::all_of(linears.begin(), linears.end(), [&](const NormedLinear& l) {
               return !l.w->quantized() && fp8_takes(l.w->values) && l.w->values.dim(1) == D &&
                      (!l.bias.defined() || (l.bias.dtype() == act_ && l.bias.numel() == l.w->values.dim(0)));
           });
}

CudaBackend::Fp8Rows CudaBackend::layer_norm_fp8(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
    const int64_t D = x.dim(-1), rows = x.numel() / D;
    const Fp8Rows h = fp8_rows(rows, D, false);
    with_type(act_, [&]<class T>() {
        layer_norm_e4m3<T>(ptr<uint8_t>(h.codes), ptr<float>(h.scales), ptr<T>(x), ptr<T>(w), ptr<T>(b), rows, D, eps,
                           stream_);
    });
    return h;
}

std::vector<Tensor> CudaBackend::layer_norm_linears(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                                    const std::vector<NormedLinear>& linears) {
    if (!normed_fp8_takes(x, w, b, linears)) return Backend::layer_norm_linears(x, w, b, eps, linears);
    const Fp8Rows h = layer_norm_fp8(x, w, b, eps);
    std::vector<Tensor> out;
    for (const NormedLinear& l : linears) {
        Tensor y = empty(with_last(x.shape(), l.w->values.dim(0)), act_);
        const bool in_epilogue = l.gelu == Gelu::tanh;  // cuBLASLt's GELU is the tanh form
        linear_fp8(y, h, l.w->values, l.bias, in_epilogue ? Epilogue::gelu_tanh : Epilogue::none);
        if (l.gelu && !in_epilogue) gelu_(y, *l.gelu);
        out.push_back(std::move(y));
    }
    return out;
}

bool CudaBackend::try_linear_fp8(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, Epilogue epilogue) {
    if (y.dtype() != act_) return false;
    const std::optional<Fp8Rows> xq = fp8_input(x, w);
    if (!xq) return false;
    linear_fp8(y, *xq, w, bias, epilogue);
    return true;
}

size_t CudaBackend::keep_fp8_copy(const QTensor& w) {
    if (!fp8_units_ || w.quantized() || !w.defined() || !fp8_takes(w.values) ||
        fp8_copies_.count(w.values.raw()))
        return 0;
    Fp8Copy copy{w.values, to_fp8(w.values, true)};  // converted before it is listed
    const size_t bytes = copy.rows.nbytes();
    fp8_copies_.emplace(w.values.raw(), std::move(copy));
    return bytes;
}

size_t CudaBackend::fp8_copy_bytes() const {
    size_t bytes = 0;
    for (const auto& [address, copy] : fp8_copies_) bytes += copy.rows.nbytes();
    for (const auto& [address, joined] : joined_fp8_) bytes += joined.bias.nbytes();
    return bytes;
}

size_t CudaBackend::keep_fp8_copies_joined(const std::array<NormedLinear, 3>& qkv) {
    const auto joinable = [&](const NormedLinear& l) {
        return !l.w->quantized() && l.w->defined() && fp8_takes(l.w->values) && !l.gelu &&
               l.w->values.dim(1) == qkv[0].w->values.dim(1) && !fp8_copies_.count(l.w->values.raw()) &&
               (!l.bias.defined() ||
                (l.bias.device() == Device::cuda && l.bias.dtype() == act_ && l.bias.numel() == l.w->values.dim(0)));
    };
    if (!fp8_units_ || !std::all_of(qkv.begin(), qkv.end(), joinable)) return Backend::keep_fp8_copies_joined(qkv);
    const int64_t K = qkv[0].w->values.dim(1);
    int64_t N = 0;
    for (const NormedLinear& l : qkv) N += l.w->values.dim(0);
    JoinedFp8 joined{{}, fp8_rows(N, K, true), allocate({N}, act_, true)};
    VIDI_CUDA_CHECK(cudaMemsetAsync(joined.bias.raw(), 0, joined.bias.nbytes(), stream_));  // (a linear without one)
    int64_t row = 0;
    for (size_t i = 0; i < qkv.size(); ++i) {
        const Tensor& w = qkv[i].w->values;
        const int64_t n = w.dim(0);
        // This weight's copy is its rows of the block: the conversion keep_fp8_copy would make.
        Fp8Copy copy{w, {joined.rows.codes.rows(row, row + n), joined.rows.scales.rows(row, row + n)}};
        to_fp8_into(copy.rows, w);
        if (qkv[i].bias.defined()) {
            Tensor dst = joined.bias.rows(row, row + n);
            copy_(dst, qkv[i].bias);
        }
        joined.members[i] = {w, qkv[i].bias};
        fp8_copies_.emplace(w.raw(), std::move(copy));
        row += n;
    }
    const size_t bytes = joined.rows.nbytes() + joined.bias.nbytes();
    joined_fp8_.emplace(qkv[0].w->values.raw(), std::move(joined));
    return bytes;
}

const CudaBackend::JoinedFp8* CudaBackend::joined_fp8(const std::array<NormedLinear, 3>& qkv) const {
    const auto found = joined_fp8_.find(qkv[0].w->values.raw());
    if (found == joined_fp8_.end()) return nullptr;
    for (size_t i = 0; i < qkv.size(); ++i) {
        const JoinedFp8::Member& m = found->second.members[i];
        const Tensor& w = qkv[i].w->values;
        if (qkv[i].w->quantized() || m.weight.raw() != w.raw() || m.weight.shape() != w.shape() ||
            m.weight.dtype() != w.dtype() || m.bias.defined() != qkv[i].bias.defined() ||
            (m.bias.defined() && m.bias.raw() != qkv[i].bias.raw()) || qkv[i].gelu)
            return nullptr;
    }
    return &found->second;
}

}  // namespace vidi::cuda
