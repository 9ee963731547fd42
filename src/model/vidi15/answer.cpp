// Vidi1.5's answers (SPEC.md §7): retrieval ranges are fractions of the duration
// ("0.12-0.25, 0.40-0.43"); they print as HH:MM:SS, truncated as the official script does.
//
// The official pattern (\d\.\d+)-(\d\.\d+) is read by a linear scan rather than std::regex:
// libstdc++'s regex recurses once per matched character and overflows the stack on a long
// run of digits, which a model given a large --max-new-tokens can write.
#include <cctype>
#include <cstdlib>

#include "model/common/answer_ranges.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

namespace {

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// Matches \d\.\d+ at `at` (the digits greedy); returns one past its end, or npos.
size_t fraction_at(const std::string& s, size_t at) {
    if (at + 2 >= s.size() || !is_digit(s[at]) || s[at + 1] != '.' || !is_digit(s[at + 2])) return std::string::npos;
    size_t end = at + 3;
    while (end < s.size() && is_digit(s[end])) ++end;
    return end;
}

}  // namespace

std::vector<TimeRange> parse_ranges(const std::string& text, double duration) {
    std::vector<TimeRange> out;
    // strtod, not stod: a fraction with hundreds of digits (the model writes anything)
    // underflows, and stod would throw out_of_range where 0 is the right reading.
    auto fraction = [&](size_t from, size_t to) { return std::strtod(text.substr(from, to - from).c_str(), nullptr); };
    size_t at = 0;
    while (at < text.size()) {
        // Leftmost match first, then the search goes on after it, as re.findall does.
        const size_t first_end = fraction_at(text, at);
        const bool dash = first_end != std::string::npos && first_end < text.size() && text[first_end] == '-';
        const size_t second_end = dash ? fraction_at(text, first_end + 1) : std::string::npos;
        if (second_end == std::string::npos) {
            ++at;
            continue;
        }
        out.push_back(fraction_range(fraction(at, first_end), fraction(first_end + 1, second_end), duration));
        at = second_end;
    }
    return out;
}

}  // namespace vidi::model::vidi15
