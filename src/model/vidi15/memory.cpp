// What a Vidi1.5 video holds on the device (runtime/memory_plan.h plans with it).
#include <algorithm>

#include "model/common/tower_memory.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                               const QuantFormat& kv) {
    const size_t e = dtype_size(act_dtype);
    const int64_t D = c.llm.hidden, visual = v.frames * v.side * v.side, tokens = visual + v.audio_tokens;
    VideoFootprint p;
    p.media_tokens = static_cast<size_t>(tokens * D) * e;
    p.media_kv = static_cast<size_t>(tokens) * c.family->media_kv_bytes_per_token(c, act_dtype, kv);
    // A media chunk through one layer: the f32 residual, then in the activation dtype the norm,
    // K, V, repeated V, o_proj, gate, up, act, down.
    const int64_t chunk = std::min<int64_t>(std::max<int64_t>(visual, v.audio_tokens), kMediaKvChunk);
    const size_t kv_chunk = static_cast<size_t>(chunk * D) * sizeof(float) +
        static_cast<size_t>(chunk * (3 * D + 2 * int64_t(c.llm.kv_heads) * c.llm.head_dim +
                                     int64_t(c.llm.heads) * c.llm.head_dim + 3 * int64_t(c.llm.intermediate)) * e);
    p.activations = std::max({kv_chunk, siglip_batch_bytes(c, frame_batch, act_dtype),
                              whisper_batch_bytes(c, act_dtype)}) +
                    kWorkspaceMargin;
    return p;
}

}  // namespace vidi::model::vidi15
