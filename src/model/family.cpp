#include "model/family.h"

namespace vidi::model {

size_t Family::media_kv_bytes(const ModelConfig& c, int64_t tokens, DType act_dtype, const QuantFormat& kv) const {
    const Shape shape{tokens, c.llm.kv_heads, c.llm.head_dim};
    const MediaKvFormat f = media_kv_format(kv.bits, c.llm.head_dim);
    const size_t per_layer = kv.quantized() ? f.key.bytes(shape) + f.value.bytes(shape)
                                            : 2 * static_cast<size_t>(tokens * c.llm.kv_heads * c.llm.head_dim) *
                                                  dtype_size(act_dtype);
    return static_cast<size_t>(c.llm.layers) * per_layer;
}

}  // namespace vidi::model
