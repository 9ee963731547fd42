// What both families do with a pair of fractions read from an answer: scale by the duration,
// clamp to [0, duration], put in order. The fractions are clamped to [0, 1] before scaling so
// that an overflowing number (inf) on a zero-length video gives 0, not NaN.
#pragma once

#include "vidi/vidi.h"

namespace vidi::model {

TimeRange fraction_range(double a, double b, double duration);

}  // namespace vidi::model
