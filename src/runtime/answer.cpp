#include "runtime/answer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <regex>

namespace vidi::runtime {

std::vector<TimeRange> parse_ranges(const std::string& text, double duration) {
    static const std::regex pattern(R"((\d\.\d+)-(\d\.\d+))");
    std::vector<TimeRange> out;
    // strtod, not stod: a fraction with hundreds of digits (the model writes anything)
    // underflows, and stod would throw out_of_range where 0 is the right reading.
    auto fraction = [](const std::ssub_match& m) { return std::strtod(m.str().c_str(), nullptr); };
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern); it != std::sregex_iterator(); ++it) {
        double a = fraction((*it)[1]) * duration, b = fraction((*it)[2]) * duration;
        a = std::clamp(a, 0.0, duration);
        b = std::clamp(b, 0.0, duration);
        out.push_back({std::min(a, b), std::max(a, b)});
    }
    return out;
}

}  // namespace vidi::runtime

namespace vidi {

std::string format_timestamp(double seconds, int decimals) {
    if (!(seconds >= 0)) seconds = 0;
    char buf[64];
    if (decimals <= 0) {
        long long s = static_cast<long long>(seconds);  // the official script truncates
        std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    } else {
        decimals = std::min(decimals, 9);  // finer than nanoseconds means nothing here
        double scale = std::pow(10.0, decimals);
        long long units = static_cast<long long>(std::floor(seconds * scale + 0.5));
        long long whole = units / static_cast<long long>(scale), frac = units % static_cast<long long>(scale);
        std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld.%0*lld", whole / 3600, whole / 60 % 60, whole % 60,
                      decimals, frac);
    }
    return buf;
}

std::string format_range(const TimeRange& r, int decimals) {
    return format_timestamp(r.start, decimals) + "-" + format_timestamp(r.end, decimals);
}

}  // namespace vidi
