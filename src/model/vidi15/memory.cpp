// What a Vidi1.5 video holds on the device (runtime/memory_plan.h plans with it).
#include <algorithm>

#include "model/common/tower_memory.h"
#include "model/common/whisper.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                               const QuantFormat& kv) {
    const size_t e = dtype_size(act_dtype);
    const int64_t D = c.llm.hidden, visual = v.frames * v.side * v.side, tokens = visual + v.audio_tokens;
    VideoFootprint p;
    p.media_tokens = static_cast<size_t>(tokens * D) * e;
    p.media_kv = c.family->media_kv_bytes(c, visual, act_dtype, kv) + c.family->media_kv_bytes(c, v.audio_tokens, act_dtype, kv);
    // A media chunk through one layer: the f32 residual, then in the activation dtype the norm,
    // K, V, repeated V, o_proj, gate, up, act, down.
    const int64_t chunk = std::min<int64_t>(std::max<int64_t>(visual, v.audio_tokens), kMediaKvChunk);
    const size_t kv_chunk = static_cast<size_t>(chunk * D) * sizeof(float) +
        static_cast<size_t>(chunk * (3 * D + 2 * int64_t(c.llm.kv_heads) * c.llm.head_dim +
                                     int64_t(c.llm.heads) * c.llm.head_dim + 3 * int64_t(c.llm.intermediate)) * e);
    // A batch of Whisper pieces, then its tokens through the glue (pooled states, projector,
    // norms); beside them the log-mel of the whole audio, held until the tower is done (an
    // hour: 120 pieces).
    const int64_t A = c.audio.d_model, pool = std::max(1, c.mm.audio_pool);
    const int64_t all_pieces = (v.audio_tokens * pool + 1499) / 1500, batch_tokens = kAudioPiecesPerBatch * 1500 / pool;
    const size_t audio = whisper_batch_bytes(c, act_dtype) + static_cast<size_t>(batch_tokens * (A * pool + 4 * D)) * e +
                         static_cast<size_t>(all_pieces * c.audio.mel_bins * 3000) * e;
    p.activations = std::max({kv_chunk, siglip_batch_bytes(c, frame_batch, act_dtype), audio}) + kWorkspaceMargin;
    return p;
}

}  // namespace vidi::model::vidi15
