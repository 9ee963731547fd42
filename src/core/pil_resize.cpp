// Bit-exact re-implementation of Pillow's ImagingResample for 8-bit images with the
// BICUBIC filter (a = -0.5): per-axis coefficient tables computed in double exactly as
// Pillow does (same expression order, so the same rounding), converted to 22-bit fixed
// point, a horizontal pass over only the rows the vertical pass needs, an 8-bit
// intermediate image, then the vertical pass. Built without FP contraction (ISO C++
// mode), so no FMA changes the double arithmetic.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "core/pil_resize.h"
#include "vidi/error.h"

namespace vidi {
namespace {

constexpr double kSupport = 2.0;  // bicubic kernel radius at scale 1

double bicubic(double x) {
    constexpr double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

int32_t to_fixed(double w) {
    const double scaled = w * (1 << kResamplePrecisionBits);
    return static_cast<int32_t>(w < 0 ? -0.5 + scaled : 0.5 + scaled);
}

uint8_t clip8(int32_t acc) {
    const int32_t v = acc >> kResamplePrecisionBits;  // arithmetic shift, as Pillow
    return static_cast<uint8_t>(std::clamp(v, 0, 255));
}

constexpr int32_t kHalf = 1 << (kResamplePrecisionBits - 1);

// One output row of the horizontal pass (C interleaved channels).
template <int C>
void horizontal_row(const uint8_t* in, uint8_t* out, const ResampleAxis& ax) {
    for (int xx = 0; xx < ax.out_size; ++xx) {
        const int32_t* k = &ax.taps[static_cast<size_t>(xx) * ax.ksize];
        const uint8_t* p = in + static_cast<size_t>(ax.first[xx]) * C;
        int32_t acc[C];
        for (int c = 0; c < C; ++c) acc[c] = kHalf;
        for (int x = 0; x < ax.count[xx]; ++x)
            for (int c = 0; c < C; ++c) acc[c] += p[x * C + c] * k[x];
        for (int c = 0; c < C; ++c) out[xx * C + c] = clip8(acc[c]);
    }
}

void horizontal_pass(const uint8_t* src, size_t src_stride, int row_begin, int rows, int channels,
                     const ResampleAxis& ax, uint8_t* dst) {
    const size_t out_stride = static_cast<size_t>(ax.out_size) * channels;
    for (int y = 0; y < rows; ++y) {
        const uint8_t* in = src + static_cast<size_t>(row_begin + y) * src_stride;
        uint8_t* out = dst + y * out_stride;
        switch (channels) {
            case 1: horizontal_row<1>(in, out, ax); break;
            case 2: horizontal_row<2>(in, out, ax); break;
            case 3: horizontal_row<3>(in, out, ax); break;
            default: horizontal_row<4>(in, out, ax); break;
        }
    }
}

// Vertical pass: rows of `row_bytes` interleaved samples; `row_offset` maps the axis'
// input rows onto the rows held in src.
void vertical_pass(const uint8_t* src, size_t src_stride, int row_offset, size_t row_bytes,
                   const ResampleAxis& ax, uint8_t* dst) {
    std::vector<int32_t> acc(row_bytes);
    for (int yy = 0; yy < ax.out_size; ++yy) {
        const int32_t* k = &ax.taps[static_cast<size_t>(yy) * ax.ksize];
        std::fill(acc.begin(), acc.end(), kHalf);
        for (int y = 0; y < ax.count[yy]; ++y) {
            const uint8_t* in = src + static_cast<size_t>(ax.first[yy] - row_offset + y) * src_stride;
            const int32_t w = k[y];
            for (size_t x = 0; x < row_bytes; ++x) acc[x] += in[x] * w;
        }
        uint8_t* out = dst + yy * row_bytes;
        for (size_t x = 0; x < row_bytes; ++x) out[x] = clip8(acc[x]);
    }
}

}  // namespace

ResampleAxis pil_bicubic_axis(int in_size, int out_size) {
    VIDI_CHECK(in_size > 0 && out_size > 0, "resize: bad sizes ", in_size, " -> ", out_size);
    ResampleAxis ax;
    ax.in_size = in_size;
    ax.out_size = out_size;
    // Pillow passes the box edges as floats: in0 = 0, in1 = in_size.
    const float in0 = 0.0f, in1 = static_cast<float>(in_size);
    const double scale = static_cast<double>(in1 - in0) / out_size;
    const double filterscale = std::max(scale, 1.0);
    const double support = kSupport * filterscale;
    ax.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    ax.first.resize(out_size);
    ax.count.resize(out_size);
    ax.taps.assign(static_cast<size_t>(out_size) * ax.ksize, 0);
    const double inv_filterscale = 1.0 / filterscale;
    std::vector<double> w(ax.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = in0 + (xx + 0.5) * scale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            w[x] = bicubic((x + xmin - center + 0.5) * inv_filterscale);
            ww += w[x];
        }
        for (int x = 0; x < xmax; ++x) {
            const double normalized = ww != 0.0 ? w[x] / ww : w[x];
            ax.taps[static_cast<size_t>(xx) * ax.ksize + x] = to_fixed(normalized);
        }
        ax.first[xx] = xmin;
        ax.count[xx] = xmax;
    }
    return ax;
}

ResampleAxis pil_resize_axis(int in_size, int out_size) {
    if (in_size != out_size) return pil_bicubic_axis(in_size, out_size);
    VIDI_CHECK(in_size > 0, "resize: bad size ", in_size);
    ResampleAxis ax;
    ax.in_size = ax.out_size = in_size;
    ax.ksize = 1;
    ax.first.resize(in_size);
    for (int i = 0; i < in_size; ++i) ax.first[i] = i;
    ax.count.assign(in_size, 1);
    ax.taps.assign(in_size, int32_t(1) << kResamplePrecisionBits);
    return ax;
}

void resize_bicubic_u8(const uint8_t* src, int sw, int sh, size_t src_stride, int channels,
                       uint8_t* dst, int dw, int dh) {
    VIDI_CHECK(channels >= 1 && channels <= 4, "resize: ", channels, " channels (1..4 supported)");
    VIDI_CHECK(sw > 0 && sh > 0 && dw > 0 && dh > 0, "resize: bad sizes ", sw, "x", sh, " -> ", dw, "x", dh);
    const bool need_h = sw != dw, need_v = sh != dh;
    const size_t dst_stride = static_cast<size_t>(dw) * channels;
    if (!need_h && !need_v) {
        for (int y = 0; y < sh; ++y) std::memcpy(dst + y * dst_stride, src + y * src_stride, dst_stride);
        return;
    }
    const ResampleAxis vert = pil_bicubic_axis(sh, dh);
    if (!need_h) {
        vertical_pass(src, src_stride, 0, dst_stride, vert, dst);
        return;
    }
    const ResampleAxis horiz = pil_bicubic_axis(sw, dw);
    if (!need_v) {
        horizontal_pass(src, src_stride, 0, sh, channels, horiz, dst);
        return;
    }
    // Only the source rows some output row reads go through the horizontal pass.
    const int row_first = vert.first.front();
    const int row_last = vert.first.back() + vert.count.back();
    std::vector<uint8_t> tmp(static_cast<size_t>(row_last - row_first) * dst_stride);
    horizontal_pass(src, src_stride, row_first, row_last - row_first, channels, horiz, tmp.data());
    vertical_pass(tmp.data(), dst_stride, row_first, dst_stride, vert, dst);
}

void resize_bicubic_u8(const uint8_t* src, int sw, int sh, int channels, uint8_t* dst, int dw, int dh) {
    resize_bicubic_u8(src, sw, sh, static_cast<size_t>(sw) * channels, channels, dst, dw, dh);
}

void normalize_siglip(const uint8_t* rgb, int size, float* chw) {
    // (v/255 - 0.5)/0.5 in double, rounded once to f32 (as the float64 reference does).
    static const auto lut = [] {
        std::array<float, 256> t{};
        for (int v = 0; v < 256; ++v) t[v] = static_cast<float>((v / 255.0 - 0.5) / 0.5);
        return t;
    }();
    const size_t plane = static_cast<size_t>(size) * size;
    for (size_t i = 0; i < plane; ++i)
        for (int c = 0; c < 3; ++c) chw[c * plane + i] = lut[rgb[i * 3 + c]];
}

void frames_to_pixels_f32(const uint8_t* rgb, int64_t n, int h, int w, int size, float* out) {
    const size_t frame = static_cast<size_t>(h) * w * 3, plane = static_cast<size_t>(3) * size * size;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
        std::vector<uint8_t> resized(static_cast<size_t>(size) * size * 3);
        resize_bicubic_u8(rgb + static_cast<size_t>(i) * frame, w, h, 3, resized.data(), size, size);
        normalize_siglip(resized.data(), size, out + static_cast<size_t>(i) * plane);
    }
}

}  // namespace vidi
