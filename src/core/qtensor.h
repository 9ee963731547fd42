// Quantised storage for weights and media K/V: values grouped along the last dimension,
// each group of `group` values sharing one f32 scale, value = q · scale (symmetric).
//   bits 8: values i8 [..., K], q in -127..127 (scale = max|x| / 127);
//   bits 4: values u8 [..., K/2], two per byte, even index in the low nibble, each stored
//           as q + 8 with q in -8..7 (scale = f · x_m / -8, x_m the value of largest
//           magnitude, f in {1, .96, .92, .88, .84}: the one leaving the least squared error).
//   scales f32 [..., K/group].
// bits 16 means not quantised: `values` is an ordinary float tensor and `scales` is unset.
// A QTensor is a pair of Tensors, not a tensor type of its own; ops that accept one say so.
#pragma once

#include <string>

#include "vidi/tensor.h"

namespace vidi {

struct QTensor {
    Tensor values;
    Tensor scales;
    int bits = 16;
    int group = 0;

    QTensor() = default;
    QTensor(Tensor t) : values(std::move(t)) {}  // NOLINT: implicit on purpose, a float tensor is a QTensor
    QTensor(Tensor v, Tensor s, int b, int g) : values(std::move(v)), scales(std::move(s)), bits(b), group(g) {}

    bool defined() const { return values.defined(); }
    bool quantized() const { return bits < 16; }
    Device device() const { return values.device(); }
    // The logical shape: the values' shape with the packed last dimension unpacked.
    Shape shape() const;
    int64_t dim(int i) const;
    int rank() const { return values.rank(); }
    size_t nbytes() const { return values.nbytes() + (scales.defined() ? scales.nbytes() : 0); }
    // Rows [begin, end) of dim 0 (values and scales alike).
    QTensor rows(int64_t begin, int64_t end) const;
    std::string describe() const;  // "q4/64[3584, 14336]" or the float tensor's description
};

// What a weight or a cache may be stored as.
struct QuantFormat {
    int bits = 16;  // 16: as loaded; 8; 4
    int group = 0;  // values per scale; 0: the whole last dimension (per-channel)
    bool quantized() const { return bits < 16; }
    // The group for rows of length K (0 -> K); whether K can be stored in this format.
    int group_for(int64_t K) const { return group > 0 ? group : static_cast<int>(K); }
    bool fits(int64_t K) const;
    // Bytes of an [N, K] tensor in this format: codes plus f32 scales (2 per value unquantised).
    size_t bytes(int64_t N, int64_t K) const;
    std::string name() const;  // "bf16", "int8", "int4/g64"
};

// Parses "bf16", "int8", "int4" (optionally "int4/g128", "int8/g64"); throws otherwise.
QuantFormat parse_quant_format(const std::string& text);

}  // namespace vidi
