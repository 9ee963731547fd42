#include "model/family.h"

#include <algorithm>

#include "model/common/tower_memory.h"

namespace vidi::model {

size_t Family::media_kv_bytes_per_token(const ModelConfig& c, DType act_dtype, const QuantFormat& kv) const {
    const size_t per_head = kv.quantized() ? static_cast<size_t>(c.llm.head_dim) + sizeof(float)
                                           : static_cast<size_t>(c.llm.head_dim) * dtype_size(act_dtype);
    return static_cast<size_t>(c.llm.layers) * 2 * static_cast<size_t>(c.llm.kv_heads) * per_head;
}

VideoFootprint decomposed_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                                    const QuantFormat& kv, size_t glue) {
    const size_t e = dtype_size(act_dtype);
    const LlmConfig& l = c.llm;
    const int64_t D = l.hidden, visual = v.frames * v.side * v.side, tokens = visual + v.audio_tokens;
    VideoFootprint p;
    p.media_tokens = static_cast<size_t>(tokens * D) * e;
    p.media_kv = static_cast<size_t>(tokens) * c.family->media_kv_bytes_per_token(c, act_dtype, kv);
    const int64_t chunk = std::min<int64_t>(std::max<int64_t>(visual, v.audio_tokens), kMediaKvChunk);
    const size_t kv_chunk =
        static_cast<size_t>(chunk * D) * sizeof(float) +
        static_cast<size_t>(chunk * (3 * D + 2 * int64_t(l.kv_heads) * l.head_dim + int64_t(l.heads) * l.head_dim +
                                     3 * int64_t(l.intermediate))) *
            e;
    p.activations =
        std::max({kv_chunk, siglip_batch_bytes(c, frame_batch, act_dtype), whisper_batch_bytes(c, act_dtype), glue}) +
        kWorkspaceMargin;
    return p;
}

}  // namespace vidi::model
