#include "model/family.h"

#include <algorithm>

#include "model/common/tower_memory.h"
#include "model/common/whisper.h"

namespace vidi::model {

size_t Family::media_kv_bytes(const ModelConfig& c, int64_t tokens, DType act_dtype, const QuantFormat& kv) const {
    const Shape shape{tokens, c.llm.kv_heads, c.llm.head_dim};
    const MediaKvFormat f = media_kv_format(kv.bits, c.llm.head_dim);
    const size_t per_layer = kv.quantized() ? f.key.bytes(shape) + f.value.bytes(shape)
                                            : 2 * static_cast<size_t>(tokens * c.llm.kv_heads * c.llm.head_dim) *
                                                  dtype_size(act_dtype);
    return static_cast<size_t>(c.llm.layers) * per_layer;
}

VideoFootprint decomposed_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                                    const QuantFormat& kv, size_t glue) {
    const size_t e = dtype_size(act_dtype);
    const LlmConfig& l = c.llm;
    const int64_t D = l.hidden, visual = v.frames * v.side * v.side, tokens = visual + v.audio_tokens;
    VideoFootprint p;
    p.media_tokens = static_cast<size_t>(tokens * D) * e;
    p.media_kv = c.family->media_kv_bytes(c, visual, act_dtype, kv) + c.family->media_kv_bytes(c, v.audio_tokens, act_dtype, kv);
    const int64_t chunk = std::min<int64_t>(std::max<int64_t>(visual, v.audio_tokens), kMediaKvChunk);
    const size_t kv_chunk =
        static_cast<size_t>(chunk * D) * sizeof(float) +
        static_cast<size_t>(chunk * (3 * D + 2 * int64_t(l.kv_heads) * l.head_dim + int64_t(l.heads) * l.head_dim +
                                     3 * int64_t(l.intermediate))) *
            e;
    // A batch of Whisper pieces and its log-mel (the runtime takes the audio a batch of pieces
    // at a time as it is decoded: runtime/audio_encoding.h), then its tokens through the audio
    // glue (pooled states, pool, projector, norms: within A·pool + 4·D a token).
    const int64_t A = c.audio.d_model, pool = std::max(1, c.mm.audio_pool);
    const int64_t batch_tokens = kAudioPiecesPerBatch * 1500 / pool;
    const size_t audio = whisper_batch_bytes(c, act_dtype) + static_cast<size_t>(batch_tokens * (A * pool + 4 * D)) * e +
                         static_cast<size_t>(kAudioPiecesPerBatch * c.audio.mel_bins * 3000) * e;
    p.activations = std::max({kv_chunk, siglip_batch_bytes(c, frame_batch, act_dtype), audio, glue}) + kWorkspaceMargin;
    return p;
}

}  // namespace vidi::model
