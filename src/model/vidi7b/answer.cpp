// Vidi-7B's answers (docs/vidi-7b.md §7): "0.12-0.25, 0.40-0.43" as fractions of the duration,
// read with the official pattern ([\d|\.]+)-([\d|\.]+) and printed as the official script does.
// The pattern is read by a linear scan, not std::regex, whose recursion per matched character
// overflows the stack on a long run of digits.
#include <cstdio>
#include <cstdlib>

#include "model/common/answer_ranges.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

namespace {

// The official pattern's character class [\d|\.]: digits, '|' and '.'.
bool in_class(char c) { return (c >= '0' && c <= '9') || c == '|' || c == '.'; }

// What Python's float() reads among those strings: digits with at most one '.', at least one
// digit, no '|'.
bool python_float(const std::string& s, double& out) {
    int dots = 0, digits = 0;
    for (char c : s) {
        if (c == '|') return false;
        (c == '.' ? dots : digits) += 1;
    }
    if (dots > 1 || digits == 0) return false;
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
    // ([\d|\.]+)-([\d|\.]+) with re.findall's leftmost, non-overlapping matches. '-' is not in
    // the class, so the first group is a whole run of the class and the second the whole run
    // after the dash: one linear pass finds every match.
    std::vector<TimeRange> out;
    auto run_end = [&](size_t at) {
        while (at < text.size() && in_class(text[at])) ++at;
        return at;
    };
    size_t at = 0;
    while (at < text.size()) {
        if (!in_class(text[at])) {
            ++at;
            continue;
        }
        const size_t first_end = run_end(at);
        if (first_end + 1 >= text.size() || text[first_end] != '-' || !in_class(text[first_end + 1])) {
            at = first_end;
            continue;
        }
        const size_t second_end = run_end(first_end + 1);
        double a = 0, b = 0;
        // The official script ends with ValueError on such a match ("0.75." at the end of a
        // sentence, "1.2.3", "|"); the engine skips it and keeps the others.
        if (python_float(text.substr(at, first_end - at), a) &&
            python_float(text.substr(first_end + 1, second_end - first_end - 1), b))
            out.push_back(fraction_range(a, b, duration));
        at = second_end;
    }
    return out;
}

std::string format_range(const TimeRange& r) { return official_stamp(r.start) + "-" + official_stamp(r.end); }

}  // namespace vidi::model::vidi7b
