// Quantised storage for weights and media K/V: each scale is shared by `group` consecutive
// values of the last dimension and `block` consecutive rows of dimension 0 (block 1: one row),
// value = q · scale (symmetric) or zero + c · scale (with zero points).
//   bits 8: values i8 [..., K], q in -127..127 (scale = max|x| / 127);
//   bits 4: values u8 [..., K/2], two per byte, even index in the low nibble. Symmetric: each
//           stored as q + 8 with q in -8..7 (scale = f · x_m / -8, x_m the value of largest
//           magnitude, f in {1, .96, .92, .88, .84}: the one leaving the least squared error).
//           With zero points: c in 0..15 (scale = (max - min) / 15, zero = min).
//   scales [ceil(rows / block), ..., K/group], f32 or f16 (rounded before the codes are chosen,
//   saturated at f16's largest finite value); zeros (when present) the same shape and dtype.
// Weights and 8-bit media K/V use block 1, f32 scales, no zero points; 4-bit media K/V
// (media_kv_format) keep keys per channel over blocks of tokens and values per token.
// bits 16 means not quantised: `values` is an ordinary float tensor and `scales` is unset.
// A QTensor is a pair of Tensors, not a tensor type of its own; ops that accept one say so.
#pragma once

#include <string>

#include "vidi/tensor.h"

namespace vidi {

struct QTensor {
    Tensor values;
    Tensor scales;
    Tensor zeros;  // undefined: symmetric
    int bits = 16;
    int group = 0;
    int block = 1;

    QTensor() = default;
    QTensor(Tensor t) : values(std::move(t)) {}  // NOLINT: implicit on purpose, a float tensor is a QTensor
    QTensor(Tensor v, Tensor s, int b, int g) : values(std::move(v)), scales(std::move(s)), bits(b), group(g) {}
    QTensor(Tensor v, Tensor s, Tensor z, int b, int g, int blk)
        : values(std::move(v)), scales(std::move(s)), zeros(std::move(z)), bits(b), group(g), block(blk) {}

    bool defined() const { return values.defined(); }
    bool quantized() const { return bits < 16; }
    Device device() const { return values.device(); }
    // The logical shape: the values' shape with the packed last dimension unpacked.
    Shape shape() const;
    int64_t dim(int i) const;
    int rank() const { return values.rank(); }
    size_t nbytes() const {
        return values.nbytes() + (scales.defined() ? scales.nbytes() : 0) + (zeros.defined() ? zeros.nbytes() : 0);
    }
    // Rows [begin, end) of dim 0 (values, scales and zeros alike; begin a multiple of block).
    QTensor rows(int64_t begin, int64_t end) const;
    std::string describe() const;  // "q4/64[3584, 14336]", "q4/1x128z[T, 8, 256]" or the float tensor's
};

// What a weight or a cache may be stored as.
struct QuantFormat {
    int bits = 16;  // 16: as loaded; 8; 4
    int group = 0;  // values per scale along the last dimension; 0: the whole of it
    int block = 1;  // rows of dimension 0 per scale (> 1 with group 1: per channel over blocks of rows)
    bool zero_points = false;         // asymmetric (4 bits only)
    DType scale_dtype = DType::f32;   // f32 or f16
    bool quantized() const { return bits < 16; }
    // The group for rows of length K (0 -> K); whether K can be stored in this format.
    int group_for(int64_t K) const { return group > 0 ? group : static_cast<int>(K); }
    bool fits(int64_t K) const;
    // Bytes of an [N, K] tensor in this format: codes plus scales (2 per value unquantised).
    size_t bytes(int64_t N, int64_t K) const;
    // The same for any shape (blocks counted along dimension 0).
    size_t bytes(const Shape& shape) const;
    std::string name() const;  // "bf16", "int8", "int4/g64"
};

// The tensors a value of `shape` takes in `format` (quantized): codes, scales and, with zero
// points, zeros of the scales' shape and dtype.
struct QuantLayout {
    Shape values, scales;
    DType values_dtype = DType::u8;
    int group = 0, block = 1;
};
QuantLayout quant_layout(const Shape& shape, const QuantFormat& format);

// How a media K/V cache [T, KV, hd] is held for a user's choice of bits (16, 8 or 4).
// 8: one f32 scale per token and head. 4: keys per channel over blocks of kMediaKeyBlock
// tokens with zero points, values per token in groups of hd/2 (hd ≤ 128) or hd/4 (64 at
// hd 256), f16 scales (docs/memory.md has the measurements behind this choice).
struct MediaKvFormat {
    QuantFormat key, value;
};
constexpr int kMediaKeyBlock = 128;
MediaKvFormat media_kv_format(int bits, int64_t head_dim);

// Parses "bf16", "int8", "int4" (optionally "int4/g128", "int8/g64"); throws otherwise.
QuantFormat parse_quant_format(const std::string& text);

}  // namespace vidi
