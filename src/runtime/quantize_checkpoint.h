// `vidi quantize`: a bf16 checkpoint -> the same layout with every linear weight that fits
// the format stored quantised (codes under the weight's name, F32 scales under
// NAME_scale; io/checkpoint.h), the rest copied as it is. `vidi` loads the result
// directly (no quantisation at load time) and `vidi inspect` describes it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/qtensor.h"

namespace vidi::runtime {

struct QuantizeOptions {
    std::string model_dir, out_dir;
    QuantFormat format{4, 64};
    uint64_t shard_bytes = 4'000'000'000;
    std::function<void(uint64_t read, uint64_t total)> progress;  // bytes of source tensors
};

struct QuantizeSummary {
    int quantized = 0, copied = 0, shards = 0;
    uint64_t bytes_in = 0, bytes_out = 0;
};

QuantizeSummary quantize_checkpoint(const QuantizeOptions& options);

}  // namespace vidi::runtime
