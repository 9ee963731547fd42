#include "core/qtensor.h"

#include <algorithm>
#include <cstdlib>

namespace vidi {

Shape QTensor::shape() const {
    Shape s = values.shape();
    if (bits == 4 && !s.empty()) s.back() *= 2;
    return s;
}

int64_t QTensor::dim(int i) const {
    const Shape s = shape();
    const int r = static_cast<int>(s.size());
    VIDI_CHECK(i >= -r && i < r, "dim ", i, " of a rank-", r, " tensor");
    return s[static_cast<size_t>(i < 0 ? i + r : i)];
}

QTensor QTensor::rows(int64_t begin, int64_t end) const {
    if (!quantized()) return QTensor(values.rows(begin, end));
    VIDI_CHECK(begin % block == 0, "rows ", begin, "..", end, " of ", describe(), ": the first row must start a block of ",
               block);
    const int64_t s0 = begin / block, s1 = (end + block - 1) / block;
    return {values.rows(begin, end), scales.rows(s0, s1), zeros.defined() ? zeros.rows(s0, s1) : Tensor(), bits,
            group, block};
}

std::string QTensor::describe() const {
    if (!quantized()) return values.describe();
    return cat("q", bits, "/", group, block > 1 ? cat("x", block) : "", zeros.defined() ? "z" : "",
               scales.defined() && scales.dtype() == DType::f16 ? "h" : "", shape_str(shape()));
}

bool QuantFormat::fits(int64_t K) const {
    if (!quantized()) return true;
    const int g = group_for(K);
    // 4-bit codes share bytes: a group's codes fill whole bytes unless a scale covers whole
    // columns of a block (group 1, block > 1: one quantiser task writes every column).
    return K > 0 && g > 0 && K % g == 0 && block >= 1 && (bits != 4 || g % 2 == 0 || (g == 1 && K % 2 == 0));
}

size_t QuantFormat::bytes(int64_t N, int64_t K) const { return bytes(Shape{N, K}); }

size_t QuantFormat::bytes(const Shape& shape) const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (!quantized()) return static_cast<size_t>(n) * 2;
    if (shape.empty() || n == 0) return 0;
    const int64_t K = shape.back(), rows = shape.front(), per_row = n / rows;
    const int64_t scales = (rows + block - 1) / block * (per_row / K) * (K / group_for(K));
    return static_cast<size_t>(n * bits / 8 + scales * int64_t(dtype_size(scale_dtype)) * (zero_points ? 2 : 1));
}

QuantLayout quant_layout(const Shape& shape, const QuantFormat& format) {
    VIDI_CHECK(format.quantized() && !shape.empty(), "quant_layout: ", format.name(), " of ", shape_str(shape));
    const int64_t K = shape.back();
    VIDI_CHECK(format.fits(K), "rows of ", K, " values cannot be stored as ", format.name());
    QuantLayout l;
    l.group = format.group_for(K);
    l.block = shape.size() == 1 ? 1 : format.block;  // a vector is one row
    l.values_dtype = format.bits == 8 ? DType::i8 : DType::u8;
    l.values = l.scales = shape;
    if (format.bits == 4) l.values.back() = K / 2;
    l.scales.back() = K / l.group;
    if (shape.size() > 1) l.scales.front() = (shape.front() + l.block - 1) / l.block;
    return l;
}

MediaKvFormat media_kv_format(int bits, int64_t head_dim) {
    VIDI_CHECK(bits == 16 || bits == 8 || bits == 4, "media K/V can be held in 16, 8 or 4 bits, not ", bits);
    MediaKvFormat f;
    if (bits == 8) f.key = f.value = QuantFormat{8, 0};
    if (bits != 4) return f;
    // Two value groups a head up to 128 dimensions, four above (64 at Gemma2-9B's 256): a key's
    // value scales are one 4- or 8-byte word, and a group holds whole 8-value words of codes.
    const int64_t groups = head_dim > 128 ? 4 : 2;
    VIDI_CHECK(head_dim > 0 && head_dim % (8 * groups) == 0, "4-bit media K/V need a head dimension that is a multiple "
               "of 16 (of 32 above 128), not ", head_dim);
    f.key = QuantFormat{4, 1, kMediaKeyBlock, true, DType::f16};
    f.value = QuantFormat{4, static_cast<int>(head_dim / groups), 1, false, DType::f16};
    return f;
}

std::string QuantFormat::name() const {
    if (!quantized()) return "bf16";
    std::string s = cat("int", bits);
    if (group > 0) s += cat("/g", group);
    if (block > 1) s += cat("x", block);
    if (zero_points) s += "z";
    if (scale_dtype == DType::f16) s += "h";
    return s;
}

QuantFormat parse_quant_format(const std::string& text) {
    std::string base = text, g;
    if (auto slash = text.find("/g"); slash != std::string::npos) {
        base = text.substr(0, slash);
        g = text.substr(slash + 2);
    }
    QuantFormat f;
    if (base == "bf16" || base == "none") f.bits = 16;
    else if (base == "int8") f.bits = 8;
    else if (base == "int4") { f.bits = 4; f.group = 64; }
    else fail("'", text, "' is not a weight format (bf16, int8, int4, int4/g128, int8/g64)");
    if (!g.empty()) {
        char* end = nullptr;
        long v = std::strtol(g.c_str(), &end, 10);
        VIDI_CHECK(f.quantized() && end && *end == 0 && v >= 2 && v % 2 == 0 && v <= 4096, "'", text,
                   "': the group size must be an even number from 2 to 4096");
        f.group = static_cast<int>(v);
    }
    return f;
}

}  // namespace vidi
