#include "core/quantize.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace vidi {

namespace {

// One group of g floats -> its codes and scale.
float quantize_group8(const float* x, int g, int8_t* q) {
    float amax = 0.0f;
    for (int i = 0; i < g; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float scale = amax / 127.0f, inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int i = 0; i < g; ++i) q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f));
    return scale;
}

// Codes for one scale (q + 8, clamped to 0..15) and the squared error they leave.
float encode4(const float* x, int g, float scale, uint8_t* q) {
    const float inv = scale != 0 ? 1.0f / scale : 0.0f;
    float err = 0.0f;
    for (int i = 0; i < g; ++i) {
        const float c = std::clamp(std::nearbyint(x[i] * inv), -8.0f, 7.0f);
        const float d = x[i] - c * scale;
        err += d * d;
        if (q) q[i / 2] = static_cast<uint8_t>(i % 2 ? (q[i / 2] | (int(c + 8) << 4)) : int(c + 8));
    }
    return err;
}

// The extreme maps to -8 (all 16 codes usable); a slightly smaller scale often leaves less
// squared error (finer steps, a few values clamped), so a few are tried and the best kept.
float quantize_group4(const float* x, int g, uint8_t* q) {
    float extreme = 0.0f;
    for (int i = 0; i < g; ++i)
        if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
    float best_scale = extreme / -8.0f, best = encode4(x, g, best_scale, nullptr);
    for (float f : {0.96f, 0.92f, 0.88f, 0.84f}) {
        const float scale = f * extreme / -8.0f, err = encode4(x, g, scale, nullptr);
        if (err < best) best = err, best_scale = scale;
    }
    encode4(x, g, best_scale, q);
    return best_scale;
}

}  // namespace

QTensor quantize(const Tensor& x, const QuantFormat& format) {
    VIDI_CHECK(x.defined() && x.on_host() && dtype_is_float(x.dtype()), "quantize: needs a float host tensor, got ",
               x.describe());
    VIDI_CHECK(format.quantized(), "quantize: format ", format.name(), " is not a quantised format");
    VIDI_CHECK(x.rank() >= 1, "quantize: needs at least one dimension");
    const int64_t K = x.dim(-1), rows = K ? x.numel() / K : 0;
    VIDI_CHECK(format.fits(K), "quantize: rows of ", K, " values cannot be stored as ", format.name());
    const int g = format.group_for(K);
    const int64_t groups = K / g;
    Shape vshape = x.shape(), sshape = x.shape();
    if (format.bits == 4) vshape.back() = K / 2;
    sshape.back() = groups;
    QTensor q(Tensor::empty(vshape, format.bits == 8 ? DType::i8 : DType::u8), Tensor::empty(sshape, DType::f32),
              format.bits, g);
    const char* src = static_cast<const char*>(x.raw());
    const size_t esize = dtype_size(x.dtype());
    auto* codes = static_cast<uint8_t*>(q.values.raw());
    float* scales = q.scales.data<float>();
    const int64_t row_bytes = format.bits == 8 ? K : K / 2;
#pragma omp parallel
    {
        std::vector<float> row(static_cast<size_t>(K));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            convert_to_f32(src + static_cast<size_t>(r * K) * esize, x.dtype(), row.data(), static_cast<size_t>(K));
            for (int64_t j = 0; j < groups; ++j) {
                const float* xg = row.data() + j * g;
                uint8_t* dst = codes + r * row_bytes + (format.bits == 8 ? j * g : j * g / 2);
                scales[r * groups + j] = format.bits == 8 ? quantize_group8(xg, g, reinterpret_cast<int8_t*>(dst))
                                                          : quantize_group4(xg, g, dst);
            }
        }
    }
    return q;
}

void dequantize_row(const QTensor& q, int64_t r, float* out) {
    const int64_t K = q.dim(-1), groups = K / q.group;
    const float* s = q.scales.data<float>() + r * groups;
    if (q.bits == 8) {
        const int8_t* c = static_cast<const int8_t*>(q.values.raw()) + r * K;
        for (int64_t i = 0; i < K; ++i) out[i] = static_cast<float>(c[i]) * s[i / q.group];
    } else {
        const uint8_t* c = static_cast<const uint8_t*>(q.values.raw()) + r * (K / 2);
        for (int64_t i = 0; i < K; i += 2) {
            const float sc = s[i / q.group];
            out[i] = static_cast<float>(int(c[i / 2] & 15) - 8) * sc;
            out[i + 1] = static_cast<float>(int(c[i / 2] >> 4) - 8) * sc;
        }
    }
}

Tensor dequantize(const QTensor& q) {
    if (!q.quantized()) return q.values.to_f32();
    VIDI_CHECK(q.values.on_host() && q.scales.on_host(), "dequantize: needs host tensors, got ", q.describe());
    Tensor out = Tensor::empty(q.shape(), DType::f32);
    const int64_t K = q.dim(-1), rows = K ? out.numel() / K : 0;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) dequantize_row(q, r, out.data<float>() + r * K);
    return out;
}

}  // namespace vidi
