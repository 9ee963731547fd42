// Every floating weight of a checkpoint read once, counting NaN and infinity: a corrupt
// download or a broken conversion otherwise shows only at generation, as NaN logits.
// `vidi inspect --values` (vidi/tools.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace vidi::io {

struct NonFiniteTensor {
    std::string name;
    int64_t nan = 0, inf = 0;
};

struct ValueScan {
    int64_t tensors = 0;  // floating tensors read (F32, F16, BF16; integer codes are skipped)
    uint64_t bytes = 0;   // their bytes
    std::vector<NonFiniteTensor> nonfinite;  // in name order
};

// NaN and infinity counts of `n` values of a floating dtype at `data` (bit patterns: an
// exponent of all ones, with a mantissa for NaN).
NonFiniteTensor count_nonfinite(const void* data, int64_t n, DType dtype);

// progress(done, total): bytes read so far, after each tensor.
ValueScan scan_values(const TensorStore& store, const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace vidi::io
