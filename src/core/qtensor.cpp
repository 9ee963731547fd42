#include "core/qtensor.h"

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
    return {values.rows(begin, end), scales.rows(begin, end), bits, group};
}

std::string QTensor::describe() const {
    if (!quantized()) return values.describe();
    return cat("q", bits, "/", group, shape_str(shape()));
}

bool QuantFormat::fits(int64_t K) const {
    if (!quantized()) return true;
    const int g = group_for(K);
    return K > 0 && g > 0 && K % g == 0 && (bits != 4 || g % 2 == 0);
}

size_t QuantFormat::bytes(int64_t N, int64_t K) const {
    if (!quantized()) return static_cast<size_t>(N * K) * 2;
    return static_cast<size_t>(N * K * bits / 8 + N * (K / group_for(K)) * int64_t(sizeof(float)));
}

std::string QuantFormat::name() const {
    if (!quantized()) return "bf16";
    std::string s = cat("int", bits);
    if (group > 0) s += cat("/g", group);
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
