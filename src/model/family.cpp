#include "model/family.h"

namespace vidi::model {

size_t Family::media_kv_bytes_per_token(const ModelConfig& c, DType act_dtype, const QuantFormat& kv) const {
    const size_t per_head = kv.quantized() ? static_cast<size_t>(c.llm.head_dim) + sizeof(float)
                                           : static_cast<size_t>(c.llm.head_dim) * dtype_size(act_dtype);
    return static_cast<size_t>(c.llm.layers) * 2 * static_cast<size_t>(c.llm.kv_heads) * per_head;
}

}  // namespace vidi::model
