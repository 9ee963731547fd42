#include "model/common/tower_memory.h"

#include <algorithm>

#include "backend/backend.h"
#include "model/common/whisper.h"

namespace vidi::model {

namespace {
// f32 attention scores, held a chunk at a time; none where the GPU's fused kernel takes the
// tower's head dim (Vidi1.5-9B's two towers).
size_t scores(int64_t count, int64_t rows, int64_t head_dim) {
    if (gpu_fused_attention(head_dim)) return 0;
    return std::min(static_cast<size_t>(count * rows * rows) * sizeof(float), kAttentionScoreBytes);
}
}  // namespace

size_t siglip_batch_bytes(const ModelConfig& c, int frame_batch, DType act_dtype) {
    const size_t e = dtype_size(act_dtype);
    const int64_t n = frame_batch, T = int64_t(c.vision.grid()) * c.vision.grid(), C = c.vision.hidden;
    return static_cast<size_t>(
               n * (3 * int64_t(c.vision.image_size) * c.vision.image_size + T * (6 * C + c.vision.intermediate)) * e) +
           scores(n * c.vision.heads, T, C / std::max(1, c.vision.heads));
}

size_t whisper_batch_bytes(const ModelConfig& c, DType act_dtype) {
    const size_t e = dtype_size(act_dtype);
    const int64_t A = c.audio.d_model, pieces = kAudioPiecesPerBatch;
    return static_cast<size_t>(pieces * (3000 * (int64_t(c.audio.mel_bins) + 3 * A) + 1500 * (6 * A + c.audio.ffn)) *
                               e) +
           scores(pieces * c.audio.heads, 1500, A / std::max(1, c.audio.heads));
}

size_t tower_fp8_copy_bytes(const ModelConfig& c) {
    const auto copy = fp8_copy_bytes_of;
    const int64_t C = c.vision.hidden, A = c.audio.d_model;
    // q, k and v kept joined, with their 16-bit biases beside them (Backend::keep_fp8_copies_joined).
    const auto qkv = [&](int64_t W) { return copy(W, W) ? 3 * (copy(W, W) + 2 * static_cast<size_t>(W)) : 0; };
    const size_t vision = qkv(C) + copy(c.vision.intermediate, C);
    const size_t audio = qkv(A) + copy(c.audio.ffn, A);
    return static_cast<size_t>(std::max(0, c.vision_layers_used())) * vision +
           static_cast<size_t>(std::max(0, c.audio.layers)) * audio;
}

}  // namespace vidi::model
