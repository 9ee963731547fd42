// Answer parsing (SPEC.md §7): retrieval answers are fractions of the duration
// ("0.12-0.25, 0.40-0.43"); we report seconds and HH:MM:SS.
#pragma once

#include <string>
#include <vector>

#include "vidi/vidi.h"

namespace vidi::runtime {

// Every "d.ddd-d.ddd" in the text, scaled by the duration; ranges are clamped to
// [0, duration] and put in order (start <= end).
std::vector<TimeRange> parse_ranges(const std::string& text, double duration);

}  // namespace vidi::runtime
