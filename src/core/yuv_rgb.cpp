// How swscale (FFmpeg 5.1) sets up a YUV -> RGB24 conversion, recomputed: the coefficients
// its colour-table initialisation derives from the matrix and range, and the vertical chroma
// filter its filter initialisation builds for SWS_BILINEAR. Checked byte for byte against
// sws_scale itself in tests/media/yuv_rgb_test.cpp.
#include "core/yuv_rgb.h"

#include <algorithm>

#include "vidi/error.h"

namespace vidi {
namespace {

// swscale's rounding of a 16.16 value to a 16-bit coefficient.
int32_t round_to_int16(int64_t f) { return std::clamp<int64_t>((f + (1 << 15)) >> 16, -0x8000, 0x7fff); }

int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

// Where chroma sits in swscale's "position" units when nobody says (its default -513):
// between the two luma samples it covers.
int chroma_position(int subsample) { return ((128 << subsample) - 128 + 128) >> subsample; }

struct VerticalTaps {
    int size = 0;
    std::vector<int> first;    // per output row
    std::vector<int> weights;  // per output row, `size` 12-bit weights
};

// The bilinear filter swscale builds to scale src rows to dst rows (positions src_pos and
// dst_pos, 12-bit weights; `align`: its x86 vertical filter alignment). Rows that read
// outside the source fold their weights onto the edge rows; each row's weights are rounded
// with the error carried to the next tap, so they sum to exactly 4096.
VerticalTaps bilinear_taps(int src, int dst, int src_pos, int dst_pos, int align) {
    VIDI_CHECK(src <= 2 * dst, "bilinear_taps: only upscaling is modelled");
    constexpr int64_t kOne = 1 << 12;
    const int64_t inc = ((int64_t(src) << 16) + (dst >> 1)) / dst;
    const int64_t fone = int64_t(1) << 54;  // swscale's unit weight when src <= 2·dst (always here)
    int size;
    std::vector<int64_t> f;
    std::vector<int> first(dst);
    if (abs64(inc - 0x10000) < 10 && src_pos == dst_pos) {
        size = 1;
        f.assign(dst, fone);
        for (int i = 0; i < dst; ++i) first[i] = i;
    } else {
        constexpr int kBilinearSpan = 2;
        size = inc <= (1 << 16) ? 1 + kBilinearSpan : 1 + (kBilinearSpan * src + dst - 1) / dst;
        size = std::max(std::min(size, src - 2), 1);
        f.assign(size_t(dst) * size, 0);
        int64_t at = ((dst_pos * inc) >> 7) - ((src_pos * int64_t(0x10000)) >> 7);
        for (int i = 0; i < dst; ++i) {
            int xx = static_cast<int>((at - (size - 2) * (int64_t(1) << 16)) / (1 << 17));
            first[i] = xx;
            for (int j = 0; j < size; ++j, ++xx) {
                int64_t d = abs64(int64_t(xx) * (1 << 17) - at) << 13;
                if (inc > 1 << 16) d = d * dst / src;
                f[size_t(i) * size + j] = std::max<int64_t>((int64_t(1) << 30) - d, 0) * (fone >> 30);
            }
            at += 2 * inc;
        }
    }
    // Near-zero taps go: leading ones by moving the row's first tap on, trailing ones by
    // shortening the filter to the longest row that still needs them.
    const int64_t cutoff = static_cast<int64_t>(0.002 * static_cast<double>(fone));
    int needed = 0;
    for (int i = dst - 1; i >= 0; --i) {
        int64_t* row = f.data() + size_t(i) * size;
        int64_t cut = 0;
        for (int j = 0; j < size; ++j) {
            cut += abs64(row[0]);
            if (cut > cutoff || (i < dst - 1 && first[i] >= first[i + 1])) break;
            std::copy(row + 1, row + size, row);
            row[size - 1] = 0;
            ++first[i];
        }
        int keep = size;
        cut = 0;
        for (int j = size - 1; j > 0; --j) {
            cut += abs64(row[j]);
            if (cut > cutoff) break;
            --keep;
        }
        needed = std::max(needed, keep);
    }
    if (needed == 1 && align == 2) align = 1;
    const int out = (needed + align - 1) / align * align;
    std::vector<int64_t> g(size_t(dst) * out, 0);
    for (int i = 0; i < dst; ++i)
        for (int j = 0; j < std::min(out, size); ++j) g[size_t(i) * out + j] = f[size_t(i) * size + j];
    // The edges: taps before the first row or past the last one fold onto it.
    for (int i = 0; i < dst; ++i) {
        int64_t* row = g.data() + size_t(i) * out;
        if (first[i] < 0) {
            for (int j = 1; j < out; ++j) {
                const int left = std::max(j + first[i], 0);
                row[left] += row[j];
                row[j] = 0;
            }
            first[i] = 0;
        }
        if (first[i] + out > src) {
            const int shift = first[i] + std::min(out - src, 0);
            int64_t acc = 0;
            for (int j = out - 1; j >= 0; --j)
                if (first[i] + j >= src) {
                    acc += row[j];
                    row[j] = 0;
                }
            for (int j = out - 1; j >= 0; --j) row[j] = j < shift ? 0 : row[j - shift];
            first[i] -= shift;
            row[src - 1 - first[i]] += acc;
        }
    }
    VerticalTaps t;
    t.size = out;
    t.first = first;
    t.weights.resize(size_t(dst) * out);
    for (int i = 0; i < dst; ++i) {
        const int64_t* row = g.data() + size_t(i) * out;
        int64_t sum = 0, error = 0;
        for (int j = 0; j < out; ++j) sum += row[j];
        sum = std::max<int64_t>((sum + kOne / 2) / kOne, 1);
        for (int j = 0; j < out; ++j) {
            const int64_t v = row[j] + error;
            const int64_t w = v >= 0 ? (v + sum / 2) / sum : (v - sum / 2) / sum;
            t.weights[size_t(i) * out + j] = static_cast<int>(w);
            error = v - w * sum;
        }
    }
    return t;
}

}  // namespace

std::optional<YuvToRgb> plan_yuv_to_rgb(const YuvColor& color, int bits, int width, int height, bool x86) {
    VIDI_CHECK(bits == 8 || bits == 10 || bits == 12, "plan_yuv_to_rgb: ", bits, "-bit samples are not supported");
    VIDI_CHECK(width > 0 && height > 0, "plan_yuv_to_rgb: bad size ", width, "x", height);
    const bool unscaled = bits == 8 && height % 2 == 0;
    // An odd width: the scaler interpolates chroma across, and the unscaled C code (pixel
    // pairs) leaves the last column unwritten; neither is modelled.
    if (width % 2 != 0 && (!unscaled || !x86)) return std::nullopt;

    // The colour tables' coefficients (16.16), as swscale derives them.
    int64_t crv = color.coefficients[0], cbu = color.coefficients[1];
    int64_t cgu = -int64_t(color.coefficients[2]), cgv = -int64_t(color.coefficients[3]);
    int64_t cy = 1 << 16, oy = 0;
    if (!color.full_range) {
        cy = cy * 255 / 219;
        oy = 16 << 16;
    } else {
        crv = crv * 224 / 255;
        cbu = cbu * 224 / 255;
        cgu = cgu * 224 / 255;
        cgv = cgv * 224 / 255;
    }
    const int64_t contrast = color.contrast, saturation = color.saturation;
    cy = (cy * contrast) >> 16;
    crv = (crv * contrast * saturation) >> 32;
    cbu = (cbu * contrast * saturation) >> 32;
    cgu = (cgu * contrast * saturation) >> 32;
    cgv = (cgv * contrast * saturation) >> 32;
    oy -= int64_t(256) * color.brightness;

    YuvToRgb plan;
    YuvRgbMath& m = plan.math;
    m.bits = bits;
    m.width = width;
    m.height = height;
    m.y_coeff = round_to_int16(cy * (1 << 13));
    m.y_offset = round_to_int16(oy * (1 << 3));
    m.v2r = round_to_int16(crv * (1 << 13));
    m.u2b = round_to_int16(cbu * (1 << 13));
    m.u2g = round_to_int16(cgu * (1 << 13));
    m.v2g = round_to_int16(cgv * (1 << 13));
    // The tables' chroma steps are in units of the luma step.
    const int64_t div = std::max<int64_t>(cy, 1);
    m.cy = cy;
    m.oy = oy;
    m.base = color.full_range ? 384 : 326;
    m.crv = (crv * (1 << 16) + 0x8000) / div;
    m.cbu = (cbu * (1 << 16) + 0x8000) / div;
    m.cgu = (cgu * (1 << 16) + 0x8000) / div;
    m.cgv = (cgv * (1 << 16) + 0x8000) / div;
    if (unscaled) {
        m.path = x86 ? YuvRgbPath::simd : YuvRgbPath::table;
        return plan;
    }
    m.path = YuvRgbPath::scaled;
    const VerticalTaps taps = bilinear_taps((height + 1) / 2, height, chroma_position(1), chroma_position(0), 2);
    if (taps.size > 2) return std::nullopt;
    plan.chroma_rows.resize(height);
    for (int y = 0; y < height; ++y) {
        const int* w = taps.weights.data() + size_t(y) * taps.size;
        const int second = taps.size == 2 ? w[1] : 0;
        if (taps.size == 2 && w[0] + w[1] != 4096) return std::nullopt;  // swscale's general filter
        plan.chroma_rows[y] = taps.first[y] * 2 + (second >= 2048 ? 1 : 0);
    }
    return plan;
}

void yuv_to_rgb24(const YuvToRgb& plan, const YuvPlanes& src, int rotation, uint8_t* dst, ptrdiff_t dst_pitch) {
    const YuvRgbMath& m = plan.math;
    const bool swap = rotation == 90 || rotation == 270;
    VIDI_CHECK(rotation == 0 || rotation == 90 || rotation == 180 || rotation == 270, "yuv_to_rgb24: bad rotation ",
               rotation);
    VIDI_CHECK((swap ? src.height : src.width) == m.width && (swap ? src.width : src.height) == m.height,
               "yuv_to_rgb24: a ", src.width, "x", src.height, " picture turned by ", rotation,
               " does not fit a plan for ", m.width, "x", m.height);
    VIDI_CHECK(m.path != YuvRgbPath::scaled || plan.chroma_rows.size() == size_t(m.height),
               "yuv_to_rgb24: the plan has no chroma rows");
    for (int y = 0; y < m.height; ++y) {
        uint8_t* row = dst + y * dst_pitch;
        for (int x = 0; x < m.width; ++x) yuv_to_rgb_pixel(m, plan.chroma_rows.data(), src, rotation, x, y, row + 3 * x);
    }
}

}  // namespace vidi
