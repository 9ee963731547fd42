#include "model/common/answer_ranges.h"

#include <algorithm>
#include <cmath>

namespace vidi::model {

TimeRange fraction_range(double a, double b, double duration) {
    auto seconds = [&](double f) { return std::isnan(f) ? 0.0 : std::clamp(f, 0.0, 1.0) * duration; };
    const double x = seconds(a), y = seconds(b);
    return {std::min(x, y), std::max(x, y)};
}

}  // namespace vidi::model
