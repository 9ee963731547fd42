// Vidi-7B's answers (docs/vidi-7b.md §7): "0.12-0.25, 0.40-0.43" as fractions of the duration,
// read with the official pattern ([\d|\.]+)-([\d|\.]+) and printed as the official script does.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <regex>

#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

namespace {

// What Python's float() reads among the strings the pattern matches (digits, '.', '|'):
// digits with at most one '.', and at least one digit.
bool python_float(const std::string& s, double& out) {
    static const std::regex number(R"(\d+\.?\d*|\.\d+)");
    if (!std::regex_match(s, number)) return false;
    out = std::strtod(s.c_str(), nullptr);  // a long fraction underflows to 0, as float() does
    return true;
}

// "{:02d}:{:02d}:{:.2f}" of int(t/3600), (int(t) % 3600) // 60, int(t) % 60.
std::string official_stamp(double t) {
    if (!(t >= 0)) t = 0;  // ranges are clamped; guards NaN
    const long long whole = static_cast<long long>(t);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%.2f", static_cast<long long>(t / 3600), whole % 3600 / 60,
                  static_cast<double>(whole % 60));
    return buf;
}

}  // namespace

std::vector<TimeRange> parse_ranges(const std::string& text, double duration) {
    static const std::regex pattern(R"(([\d|\.]+)-([\d|\.]+))");
    std::vector<TimeRange> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern); it != std::sregex_iterator(); ++it) {
        double a = 0, b = 0;
        // The official script ends with ValueError on such a match ("0.75." at the end of a
        // sentence, "1.2.3", "|"); the engine skips it and keeps the others.
        if (!python_float((*it)[1].str(), a) || !python_float((*it)[2].str(), b)) continue;
        a = std::clamp(a * duration, 0.0, duration);
        b = std::clamp(b * duration, 0.0, duration);
        out.push_back({std::min(a, b), std::max(a, b)});
    }
    return out;
}

std::string format_range(const TimeRange& r) { return official_stamp(r.start) + "-" + official_stamp(r.end); }

}  // namespace vidi::model::vidi7b
