#include "core/fp8.h"

#include <array>
#include <cmath>

namespace vidi {

namespace {

// The 128 non-negative codes' values, in increasing order (0x7F, NaN, last).
const std::array<float, 128>& magnitudes() {
    static const std::array<float, 128> table = [] {
        std::array<float, 128> t{};
        for (int c = 0; c < 128; ++c) {
            const int e = c >> 3, m = c & 7;
            t[c] = e == 0 ? std::ldexp(static_cast<float>(m), -9)                // subnormal: m/8 · 2^-6
                          : std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
        }
        t[127] = std::nanf("");
        return t;
    }();
    return table;
}

}  // namespace

float e4m3_to_float(uint8_t code) {
    const float v = magnitudes()[code & 0x7F];
    return code & 0x80 ? -v : v;
}

uint8_t float_to_e4m3(float x) {
    if (std::isnan(x)) return 0x7F;
    const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
    const float a = std::fabs(x);
    if (a >= kE4m3Max) return sign | 0x7E;
    // The two codes around a (the finite magnitudes are increasing in the code), then the
    // nearer, ties to the even code (even mantissa).
    const auto& t = magnitudes();
    int lo = 0, hi = 126;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        (t[mid] <= a ? lo : hi) = mid;
    }
    if (a < t[lo] || a == t[lo]) return sign | static_cast<uint8_t>(lo);
    const float below = a - t[lo], above = t[hi] - a;
    const int code = below < above ? lo : above < below ? hi : (lo % 2 == 0 ? lo : hi);
    return sign | static_cast<uint8_t>(code);
}

}  // namespace vidi
