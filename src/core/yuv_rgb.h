// swscale's 4:2:0 YUV -> packed RGB24, bit for bit, as the CPU path's sws_scale gives it
// (FFmpeg 5.1, SWS_BILINEAR, the same size in and out), written once as integer arithmetic
// that runs on the host (the reference the tests hold it to) and in the CUDA kernel that
// converts NVDEC's frames (backend/cuda/yuv_rgb.cu). Which of swscale's paths a picture
// takes decides the arithmetic:
//  - 8 bits and an even height: the unscaled converter. On x86 its SIMD code: samples times
//    8, offsets subtracted, 16-bit high-half products with 13-bit coefficients, saturating
//    sums; elsewhere its C code: lookup tables, each chroma row serving two picture rows.
//  - otherwise (an odd height, or 10/12 bits): the scaler. Samples widened to 15 bits, chroma
//    rows brought to the picture's height by the vertical bilinear filter, of whose two taps
//    the packed RGB output takes the first row alone when the second weighs less than half
//    and the rounded mean of both otherwise, then the lookup tables.
//  - an odd width on the scaler (which then interpolates chroma horizontally as well) or on
//    the unscaled C code (which converts pixel pairs and leaves the last column as it was):
//    not modelled (plan_yuv_to_rgb says so; the caller converts with swscale itself).
// The tables are never built: their entries are computed where they are read.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#ifdef __CUDACC__
#define VIDI_HOST_DEVICE __host__ __device__
#else
#define VIDI_HOST_DEVICE
#endif

namespace vidi {

// The colour parameters swscale converts with (sws_setColorspaceDetails): the matrix as
// sws_getCoefficients(colorspace) returns it, the input range and swscale's defaults.
struct YuvColor {
    std::array<int32_t, 4> coefficients{};
    bool full_range = false;
    int brightness = 0, contrast = 1 << 16, saturation = 1 << 16;
};

enum class YuvRgbPath : int32_t { simd = 0, table = 1, scaled = 2 };

// Everything the per-pixel arithmetic reads (plain data, passed to kernels by value).
struct YuvRgbMath {
    YuvRgbPath path = YuvRgbPath::simd;
    int32_t bits = 8;              // sample depth
    int32_t width = 0, height = 0;  // the picture (upright)
    // simd: 16-bit coefficients and the luma offset times 8
    int32_t y_coeff = 0, y_offset = 0, v2r = 0, u2b = 0, u2g = 0, v2g = 0;
    // table / scaled: the lookup tables' generating values (16.16 fixed point)
    int64_t cy = 0, oy = 0, base = 0, crv = 0, cbu = 0, cgu = 0, cgv = 0;
};

struct YuvToRgb {
    YuvRgbMath math;
    // scaled: for each picture row, the first chroma row it reads times 2, plus 1 when the
    // rounded mean with the next chroma row is taken. Empty for the other paths.
    std::vector<int32_t> chroma_rows;
};

// The conversion sws_scale does for a width×height 4:2:0 picture of `bits` bits; nullopt
// where swscale takes a path this model does not cover (an odd width off the x86 converter,
// or a vertical filter of more than two taps). x86: swscale runs its x86 SIMD converter.
std::optional<YuvToRgb> plan_yuv_to_rgb(const YuvColor& color, int bits, int width, int height, bool x86);

// One picture's planes as a decoder left them (before any rotation): luma, and chroma as
// two planes or interleaved (NV12/P010: U at even, V at odd samples when v is null).
// Samples are bytes, or 16-bit little-endian words holding the value at bit `shift` (P010:
// 6; planar 10-bit: 0). Pointers are host or device memory alike.
struct YuvPlanes {
    const uint8_t* y = nullptr;
    const uint8_t* u = nullptr;
    const uint8_t* v = nullptr;
    int64_t y_pitch = 0, uv_pitch = 0;  // bytes
    int32_t width = 0, height = 0;      // the decoded picture
    int32_t sample_bytes = 1;
    int32_t shift = 0;
};

// The reference: the planes turned clockwise by `rotation` (0/90/180/270, each plane on its
// own, as the CPU path turns them before converting) and converted as `plan` says into
// packed RGB24 rows of `dst_pitch` bytes. The plan is for the upright picture's size.
void yuv_to_rgb24(const YuvToRgb& plan, const YuvPlanes& src, int rotation, uint8_t* dst, ptrdiff_t dst_pitch);

// --- the per-pixel arithmetic (host and device) ---------------------------------------------

// Where upright pixel (x, y) of a w×h plane turned clockwise by `rotation` comes from.
VIDI_HOST_DEVICE inline void source_of(int x, int y, int w, int h, int rotation, int& sx, int& sy) {
    if (rotation == 90) {
        sx = y;
        sy = h - 1 - x;
    } else if (rotation == 180) {
        sx = w - 1 - x;
        sy = h - 1 - y;
    } else if (rotation == 270) {
        sx = w - 1 - y;
        sy = x;
    } else {
        sx = x;
        sy = y;
    }
}

VIDI_HOST_DEVICE inline int sample_at(const uint8_t* row, int i, int bytes, int shift) {
    if (bytes == 1) return row[i];
    return (row[2 * i] | (row[2 * i + 1] << 8)) >> shift;
}

VIDI_HOST_DEVICE inline int clamp_int(int64_t v, int lo, int hi) {
    return static_cast<int>(v < lo ? lo : v > hi ? hi : v);
}

// pmulhw: the high half of a signed 16×16-bit product.
VIDI_HOST_DEVICE inline int mul_high16(int a, int b) { return static_cast<int16_t>((a * b) >> 16); }
VIDI_HOST_DEVICE inline int saturate16(int v) { return clamp_int(v, -32768, 32767); }

// x86 SIMD converter: 8-bit samples.
VIDI_HOST_DEVICE inline void rgb_simd(const YuvRgbMath& m, int y, int u, int v, uint8_t* out) {
    const int uu = saturate16((u << 3) - (128 << 3)), vv = saturate16((v << 3) - (128 << 3));
    const int yy = mul_high16(static_cast<int16_t>((y << 3) - m.y_offset), m.y_coeff);
    const int g = saturate16(mul_high16(uu, m.u2g) + mul_high16(vv, m.v2g));
    out[0] = static_cast<uint8_t>(clamp_int(saturate16(yy + mul_high16(vv, m.v2r)), 0, 255));
    out[1] = static_cast<uint8_t>(clamp_int(saturate16(yy + g), 0, 255));
    out[2] = static_cast<uint8_t>(clamp_int(saturate16(yy + mul_high16(uu, m.u2b)), 0, 255));
}

// The lookup tables' entries: luma table at index k, and a chroma table's offset into it.
VIDI_HOST_DEVICE inline uint8_t table_luma(const YuvRgbMath& m, int64_t k) {
    return static_cast<uint8_t>(
        clamp_int(((m.base + k) * m.cy - (int64_t(384) << 16) - m.oy + 0x8000) >> 16, 0, 255));
}
VIDI_HOST_DEVICE inline int64_t table_offset(int c, int64_t inc) {
    return ((clamp_int(c, 0, 255) * inc) >> 16) - (inc >> 9);
}
// Table indices: Y, U, V in 0..256.
VIDI_HOST_DEVICE inline void rgb_table(const YuvRgbMath& m, int y, int u, int v, uint8_t* out) {
    out[0] = table_luma(m, y + table_offset(v, m.crv));
    out[1] = table_luma(m, y + table_offset(u, m.cgu) + table_offset(v, m.cgv));
    out[2] = table_luma(m, y + table_offset(u, m.cbu));
}
// The scaler's 15-bit sample rounded to a table index, and two chroma rows' rounded mean.
VIDI_HOST_DEVICE inline int scaled_index(int s, int bits) { return ((s << (15 - bits)) + 64) >> 7; }
VIDI_HOST_DEVICE inline int scaled_mean(int a, int b, int bits) {
    return ((a << (15 - bits)) + (b << (15 - bits)) + 128) >> 8;
}

// Upright pixel (x, y) of `p` turned by `rotation`, converted by `m` into out[0..2].
// chroma_rows: YuvToRgb::chroma_rows (scaled path only).
VIDI_HOST_DEVICE inline void yuv_to_rgb_pixel(const YuvRgbMath& m, const int32_t* chroma_rows, const YuvPlanes& p,
                                              int rotation, int x, int y, uint8_t* out) {
    const int b = p.sample_bytes, sh = p.shift;
    int sx, sy;
    source_of(x, y, p.width, p.height, rotation, sx, sy);
    const int luma = sample_at(p.y + sy * p.y_pitch, sx, b, sh);
    // The chroma planes, turned like the picture: (w+1)/2 × (h+1)/2 before the turn.
    const int cw = (p.width + 1) / 2, ch = (p.height + 1) / 2;
    const int row_code = m.path == YuvRgbPath::scaled ? chroma_rows[y] : (y / 2) * 2;
    const int crow = row_code >> 1, cx = x / 2;
    auto chroma = [&](int r, int& u, int& v) {
        int csx, csy;
        source_of(cx, r, cw, ch, rotation, csx, csy);
        if (p.v) {
            u = sample_at(p.u + csy * p.uv_pitch, csx, b, sh);
            v = sample_at(p.v + csy * p.uv_pitch, csx, b, sh);
        } else {
            u = sample_at(p.u + csy * p.uv_pitch, 2 * csx, b, sh);
            v = sample_at(p.u + csy * p.uv_pitch, 2 * csx + 1, b, sh);
        }
    };
    int u, v;
    chroma(crow, u, v);
    if (m.path == YuvRgbPath::simd) {
        rgb_simd(m, luma, u, v, out);
    } else if (m.path == YuvRgbPath::table) {
        rgb_table(m, luma, u, v, out);
    } else if (row_code & 1) {
        int u1, v1;
        chroma(crow + 1, u1, v1);
        rgb_table(m, scaled_index(luma, m.bits), scaled_mean(u, u1, m.bits), scaled_mean(v, v1, m.bits), out);
    } else {
        rgb_table(m, scaled_index(luma, m.bits), scaled_index(u, m.bits), scaled_index(v, m.bits), out);
    }
}

}  // namespace vidi
