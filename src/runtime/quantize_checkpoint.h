// `vidi quantize` (vidi/tools.h): a bf16 checkpoint -> the same layout with every linear
// weight that fits the format stored quantised (codes under the weight's name, F32 scales
// under NAME_scale; io/checkpoint.h), the rest copied as it is. `vidi` loads the result
// directly (no quantisation at load time) and `vidi inspect` describes it.
#pragma once

#include "vidi/tools.h"

namespace vidi::runtime {

using vidi::QuantizeOptions;
using vidi::QuantizeSummary;
using vidi::quantize_checkpoint;

}  // namespace vidi::runtime
