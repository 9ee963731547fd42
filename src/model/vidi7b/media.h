// Vidi-7B's visual and audio tokens (docs/vidi-7b.md §3-§4): the shared towers, then per frame
// the image pool (a learnt Conv2d of kernel ⌈g/s⌉ and stride 1 over the g×g patch grid,
// bilinear with align_corners to s×s: s² tokens a frame for every video length), and the glue
// both families share (model/common/media_glue.h). Tokens come back after mm_rand_llm_norm.
#pragma once

#include <functional>
#include <vector>

#include "backend/backend.h"
#include "model/common/media_glue.h"
#include "model/common/siglip.h"
#include "model/common/whisper.h"
#include "model/config.h"
#include "model/media_tokenizer.h"

namespace vidi::model::vidi7b {

// The image pool's convolution works on at most this many im2col values at a time (frames of a
// batch in groups): 64 Mi, 128 MiB in bf16 (a 24×24 grid of 1152·4·4 is 10.6 Mi values a frame).
constexpr int64_t kPoolColumns = int64_t(1) << 26;

class Media final : public GlueAudioTokenizer {
public:
    Media(const ModelConfig& config, const WeightLoader& root);

    int dim() const override { return dim_; }
    // s = mm_image_pool_size for every video (there is no token budget).
    int grid_side(int64_t total_frames, int64_t budget) const override;
    Tensor image_tokens(const Tensor& pixels_batch, const std::vector<int64_t>& frame_positions,
                        int64_t total_frames, int64_t budget) const override;
    void prepare_video(int64_t total_frames, int64_t budget) const override;

    // The pooled grid of n frames' patch grids [n, g, g, C] -> [n, s, s, C] (conv + resize).
    Tensor pool(const Tensor& patches) const;
    // Frames a pool pass takes at most (kPoolColumns).
    int64_t pool_frames() const;

private:
    const MediaGlue& glue() const override { return glue_; }
    const WhisperEncoder& whisper() const override { return audio_; }

    Backend& be_;
    int dim_, side_, kernel_;
    SiglipVision vision_;
    WhisperEncoder audio_;
    MediaGlue glue_;
    Tensor conv_;  // [C, C·k·k]
};

}  // namespace vidi::model::vidi7b
