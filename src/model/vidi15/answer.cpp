// Vidi1.5's answers (SPEC.md §7): retrieval ranges are fractions of the duration
// ("0.12-0.25, 0.40-0.43"); they print as HH:MM:SS, truncated as the official script does.
#include <algorithm>
#include <cstdlib>
#include <regex>

#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

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

}  // namespace vidi::model::vidi15
