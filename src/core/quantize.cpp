#include "core/quantize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace vidi {

namespace {

constexpr float kNotANumber = std::numeric_limits<float>::quiet_NaN();

// A group holding NaN or infinity gets zero codes and a NaN scale: what it held stays not a
// number (and fails where the 16-bit weights would) instead of turning into values.
bool not_finite(const float* x, int64_t g, uint8_t* codes, uint8_t zero_code) {
    for (int64_t i = 0; i < g; ++i)
        if (!std::isfinite(x[i])) {
            std::fill_n(codes, g, zero_code);
            return true;
        }
    return false;
}

// One group of g floats -> its codes and scale.
float quantize_group8(const float* x, int64_t g, uint8_t* codes) {
    if (not_finite(x, g, codes, 0)) return kNotANumber;
    float amax = 0.0f;
    for (int64_t i = 0; i < g; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float scale = amax / 127.0f, inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int64_t i = 0; i < g; ++i)
        codes[i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f)));
    return scale;
}

// Codes for one scale (q + 8, clamped to 0..15) and the squared error they leave.
float encode4(const float* x, int64_t g, float scale, uint8_t* codes) {
    const float inv = scale != 0 ? 1.0f / scale : 0.0f;
    float err = 0.0f;
    for (int64_t i = 0; i < g; ++i) {
        const float c = std::clamp(std::nearbyint(x[i] * inv), -8.0f, 7.0f);
        const float d = x[i] - c * scale;
        err += d * d;
        if (codes) codes[i] = static_cast<uint8_t>(c + 8);
    }
    return err;
}

// The extreme maps to -8 (all 16 codes usable); a slightly smaller scale often leaves less
// squared error (finer steps, a few values clamped), so a few are tried and the best kept.
// Each candidate is rounded to the stored scale dtype before it is judged.
float quantize_group4(const float* x, int64_t g, DType scale_dtype, uint8_t* codes) {
    if (not_finite(x, g, codes, 8)) return kNotANumber;
    float extreme = 0.0f;
    for (int64_t i = 0; i < g; ++i)
        if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
    float best_scale = round_scale(extreme / -8.0f, scale_dtype), best = encode4(x, g, best_scale, nullptr);
    for (float f : {0.96f, 0.92f, 0.88f, 0.84f}) {
        const float scale = round_scale(f * extreme / -8.0f, scale_dtype), err = encode4(x, g, scale, nullptr);
        if (err < best) best = err, best_scale = scale;
    }
    encode4(x, g, best_scale, codes);
    return best_scale;
}

// With a zero point: min and max span codes 0..15.
void quantize_group4_asym(const float* x, int64_t g, DType scale_dtype, uint8_t* codes, float* scale, float* zero) {
    if (not_finite(x, g, codes, 0)) {
        *scale = *zero = kNotANumber;
        return;
    }
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < g; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
    *scale = round_scale((hi - lo) / 15.0f, scale_dtype);
    *zero = round_scale(lo, scale_dtype);
    const float inv = *scale != 0 ? 1.0f / *scale : 0.0f;
    for (int64_t i = 0; i < g; ++i) codes[i] = static_cast<uint8_t>(std::clamp(std::nearbyint((x[i] - *zero) * inv), 0.0f, 15.0f));
}

void store_scale(Tensor& t, int64_t i, float v) {
    if (t.dtype() == DType::f16) static_cast<uint16_t*>(t.raw())[i] = f32_to_f16(v);
    else t.data<float>()[i] = v;
}

}  // namespace

float round_scale(float s, DType scale_dtype) {
    if (scale_dtype != DType::f16) return s;
    constexpr float kMax = 65504.0f;  // f16's largest finite value: saturate rather than overflow
    return f16_to_f32(f32_to_f16(std::clamp(s, -kMax, kMax)));
}

QTensor quantize(const Tensor& x, const QuantFormat& format) {
    VIDI_CHECK(x.defined() && x.on_host() && dtype_is_float(x.dtype()), "quantize: needs a float host tensor, got ",
               x.describe());
    VIDI_CHECK(format.quantized(), "quantize: format ", format.name(), " is not a quantised format");
    VIDI_CHECK(x.rank() >= 1, "quantize: needs at least one dimension");
    VIDI_CHECK(format.scale_dtype == DType::f32 || format.scale_dtype == DType::f16, "quantize: scales must be f32 or f16");
    VIDI_CHECK(!format.zero_points || format.bits == 4, "quantize: zero points are for 4-bit formats only");
    const int64_t K = x.dim(-1), rows = K ? x.numel() / K : 0;
    VIDI_CHECK(format.fits(K), "quantize: rows of ", K, " values cannot be stored as ", format.name());
    const QuantLayout l = quant_layout(x.shape(), format);
    const int64_t g = l.group, groups = K / g, B = l.block;
    const int64_t T = x.rank() == 1 ? 1 : x.dim(0), inner = T ? rows / T : 0, blocks = (T + B - 1) / B;
    QTensor q(Tensor::empty(l.values, l.values_dtype), Tensor::empty(l.scales, format.scale_dtype),
              format.zero_points ? Tensor::empty(l.scales, format.scale_dtype) : Tensor(), format.bits,
              static_cast<int>(g), static_cast<int>(B));
    const int64_t block_rows = B, tasks = blocks * inner;
    const char* src = static_cast<const char*>(x.raw());
    const size_t esize = dtype_size(x.dtype());
    auto* codes = static_cast<uint8_t*>(q.values.raw());
    const int64_t row_bytes = format.bits == 8 ? K : K / 2;
    // A task is one scale row: a block of rows (t in the block, one inner index) and every
    // group of their last dimension, so that tasks never share a byte of codes.
#pragma omp parallel
    {
        std::vector<float> buf(static_cast<size_t>(block_rows * K)), vals(static_cast<size_t>(block_rows * g));
        std::vector<uint8_t> c(static_cast<size_t>(block_rows * g));
#pragma omp for schedule(static)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t b = task / inner, i = task % inner;
            const int64_t t0 = b * block_rows, n = std::min(block_rows, T - t0);
            for (int64_t rr = 0; rr < n; ++rr) {
                const int64_t r = (t0 + rr) * inner + i;
                convert_to_f32(src + static_cast<size_t>(r * K) * esize, x.dtype(), buf.data() + rr * K,
                               static_cast<size_t>(K));
            }
            for (int64_t j = 0; j < groups; ++j) {
                const int64_t m = n * g;  // the group's values, row after row
                for (int64_t rr = 0; rr < n; ++rr) std::copy_n(buf.data() + rr * K + j * g, g, vals.data() + rr * g);
                float scale = 0.0f, zero = 0.0f;
                if (format.bits == 8) scale = quantize_group8(vals.data(), m, c.data());
                else if (format.zero_points) quantize_group4_asym(vals.data(), m, format.scale_dtype, c.data(), &scale, &zero);
                else scale = quantize_group4(vals.data(), m, format.scale_dtype, c.data());
                store_scale(q.scales, task * groups + j, scale);
                if (format.zero_points) store_scale(q.zeros, task * groups + j, zero);
                for (int64_t rr = 0; rr < n; ++rr) {
                    uint8_t* row = codes + ((t0 + rr) * inner + i) * row_bytes;
                    for (int64_t e = 0; e < g; ++e) {
                        const int64_t k = j * g + e;
                        const uint8_t code = c[static_cast<size_t>(rr * g + e)];
                        if (format.bits == 8) row[k] = code;
                        else row[k / 2] = static_cast<uint8_t>(k % 2 ? (row[k / 2] & 15) | (code << 4) : code);
                    }
                }
            }
        }
    }
    return q;
}

DequantRows::DequantRows(const QTensor& q)
    : codes_(static_cast<const uint8_t*>(q.values.raw())),
      scales_(q.scales.raw()),
      zeros_(q.zeros.defined() ? q.zeros.raw() : nullptr),
      f16_scales_(q.scales.dtype() == DType::f16),
      bits_(q.bits),
      K_(q.dim(-1)),
      group_(q.group),
      block_(q.block),
      inner_(1) {
    VIDI_CHECK(q.quantized() && q.values.on_host() && q.scales.on_host() && q.group > 0 && K_ % q.group == 0,
               "dequantize: needs a quantised host tensor, got ", q.describe());
    if (q.rank() > 1 && q.dim(0) > 0) inner_ = q.values.numel() / (q.values.dim(-1) * q.dim(0));
}

void DequantRows::row(int64_t r, float* out) const {
    const int64_t groups = K_ / group_;
    // Rows are (t, i) of [T, inner..., K]; a block of rows t shares scale row t / block.
    const int64_t s0 = ((r / inner_ / block_) * inner_ + r % inner_) * groups;
    auto scale_at = [this](const void* p, int64_t i) {
        return f16_scales_ ? f16_to_f32(static_cast<const uint16_t*>(p)[i]) : static_cast<const float*>(p)[i];
    };
    const auto* c8 = reinterpret_cast<const int8_t*>(codes_) + r * K_;
    const uint8_t* c4 = codes_ + r * (K_ / 2);
    const float offset = zeros_ ? 0.0f : 8.0f;  // symmetric 4-bit codes are stored as q + 8
    for (int64_t j = 0; j < groups; ++j) {
        const float scale = scale_at(scales_, s0 + j), zero = zeros_ ? scale_at(zeros_, s0 + j) : 0.0f;
        float* o = out + j * group_;
        if (bits_ == 8) {
            for (int64_t i = 0; i < group_; ++i) o[i] = static_cast<float>(c8[j * group_ + i]) * scale;
            continue;
        }
        for (int64_t i = 0; i < group_; ++i) {
            const int64_t k = j * group_ + i;
            const float code = static_cast<float>(k % 2 ? c4[k / 2] >> 4 : c4[k / 2] & 15) - offset;
            o[i] = zeros_ ? zero + code * scale : code * scale;
        }
    }
}

void dequantize_row(const QTensor& q, int64_t r, float* out) { DequantRows(q).row(r, out); }

Tensor dequantize(const QTensor& q) {
    if (!q.quantized()) return q.values.to_f32();
    VIDI_CHECK(q.values.on_host() && q.scales.on_host() && (!q.zeros.defined() || q.zeros.on_host()),
               "dequantize: needs host tensors, got ", q.describe());
    Tensor out = Tensor::empty(q.shape(), DType::f32);
    const int64_t K = q.dim(-1), rows = K ? out.numel() / K : 0;
    const DequantRows reader(q);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) reader.row(r, out.data<float>() + r * K);
    return out;
}

}  // namespace vidi
