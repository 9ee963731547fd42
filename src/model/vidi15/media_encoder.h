// Vidi1.5's visual and audio tokens (SPEC.md §3-§4): the shared towers plus Vidi1.5's glue
// (grid padding, token-budget resize, space-to-depth, projectors, norms, positional MLPs).
// Tokens come back after mm_rand_llm_norm and before the decoder's sqrt(D) scaling.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "model/common/media_glue.h"
#include "model/common/siglip.h"
#include "model/common/whisper.h"
#include "model/config.h"
#include "model/media_tokenizer.h"

namespace vidi::model::vidi15 {

// Visual tokens allowed per video before the grids shrink.
constexpr int64_t kVisualTokenBudget = 60000;
// The smallest padded patch grid a budget leaves (before pooling).
constexpr int kMinPatchGridSide = 10;

// Side of the (padded) patch grid after the token budget: `padded` (28) while
// F·padded² <= budget·pool², else max(10, t - t mod 2) with t = int(padded·sqrt(budget·pool²/(F·padded²))).
int budget_grid_side(int64_t frames, int padded, int pool, int64_t budget = kVisualTokenBudget);
// Token grid side per frame (after pooling) for a video of F frames under `budget`, from the
// config alone (the memory planner uses it before any weight is loaded).
int token_grid_side(const ModelConfig& c, int64_t frames, int64_t budget = kVisualTokenBudget);

class MediaEncoder final : public GlueAudioTokenizer {
public:
    MediaEncoder(const ModelConfig& config, const WeightLoader& root);

    // Token grid side h (= w) for a video of `total_frames` frames: 14 up to 306 frames
    // (with the default budget).
    int grid_side(int64_t total_frames, int64_t budget) const override;
    int grid_side(int64_t total_frames) const { return grid_side(total_frames, kVisualTokenBudget); }
    // Side of the padded patch grid before space-to-depth (2·grid_side).
    int patch_grid_side(int64_t total_frames, int64_t budget = kVisualTokenBudget) const;
    int64_t tokens_per_frame(int64_t total_frames, int64_t budget = kVisualTokenBudget) const;

    // pixels_batch [n, 3, S, S] f32 (host or device), frame_positions: n distinct positions in
    // 0..total_frames-1 -> [n·h·w, D] on the backend, frame-major, then row, then column.
    Tensor image_tokens(const Tensor& pixels_batch, const std::vector<int64_t>& frame_positions,
                        int64_t total_frames, int64_t budget) const override;
    Tensor image_tokens(const Tensor& pixels_batch, const std::vector<int64_t>& frame_positions,
                        int64_t total_frames) const {
        return image_tokens(pixels_batch, frame_positions, total_frames, kVisualTokenBudget);
    }
    void prepare_video(int64_t total_frames, int64_t budget) const override;

    // Audio tokens (SPEC.md §2.6, §4): GlueAudioTokenizer's, kAudioPiecesPerBatch pieces at a
    // time from the tower to the tokens.
    using GlueAudioTokenizer::audio_tokens;
    // The same `pieces_per_batch` pieces at a time (the result does not depend on it).
    // progress(done, total): 30 s pieces through the audio tower so far (optional).
    Tensor audio_tokens(const Tensor& mel, int64_t mel_frames, const std::function<void(int64_t, int64_t)>& progress,
                        int64_t pieces_per_batch) const;

    int dim() const override { return dim_; }
    const SiglipVision& vision() const { return vision_; }
    const WhisperEncoder& audio() const { return audio_; }

private:
    const MediaGlue& glue() const override { return glue_; }
    const WhisperEncoder& whisper() const override { return audio_; }

    Backend& be_;
    MediaConfig mm_;
    int dim_;
    int padded_grid_;
    SiglipVision vision_;
    WhisperEncoder audio_;
    MediaGlue glue_;
};

}  // namespace vidi::model::vidi15
