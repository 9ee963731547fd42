// Visual and audio tokens (SPEC.md §3-§4): the towers plus Vidi's glue (grid padding,
// token-budget resize, space-to-depth, projectors, norms, positional MLPs).
//
// Frames stream in batches: image_tokens() takes any batch of frames with their positions
// 0..F-1 in the video and the total F (known up front from the duration), and returns
// exactly the rows of the full [F·h·w, D] token matrix that belong to those frames, so
// batches can be concatenated in frame order. Tokens come back after mm_rand_llm_norm and
// before the decoder's sqrt(D) scaling.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/positional.h"
#include "model/siglip.h"
#include "model/whisper.h"

namespace vidi::model {

// Visual tokens allowed per video before the grids shrink.
constexpr int64_t kVisualTokenBudget = 60000;
// 30-second audio pieces put through the audio tower together (larger GEMMs, fewer launches).
constexpr int64_t kAudioPiecesPerBatch = 4;

// Side of the (padded) patch grid after the token budget: `padded` (28) while
// F·padded² <= budget·pool², else max(10, t - t mod 2) with t = int(padded·sqrt(budget·pool²/(F·padded²))).
int budget_grid_side(int64_t frames, int padded, int pool, int64_t budget = kVisualTokenBudget);
// Token grid side per frame (after pooling) for a video of F frames under `budget`, from the
// config alone (the memory planner uses it before any weight is loaded).
int token_grid_side(const io::ModelConfig& c, int64_t frames, int64_t budget = kVisualTokenBudget);

class MediaEncoder {
public:
    MediaEncoder(const io::ModelConfig& config, const WeightLoader& root);

    // Token grid side h (= w) for a video of `total_frames` frames: 14 up to 306 frames
    // (with the default budget).
    int grid_side(int64_t total_frames, int64_t budget = kVisualTokenBudget) const;
    // Side of the padded patch grid before space-to-depth (2·grid_side).
    int patch_grid_side(int64_t total_frames, int64_t budget = kVisualTokenBudget) const;
    int64_t tokens_per_frame(int64_t total_frames, int64_t budget = kVisualTokenBudget) const;

    // pixels_batch [n, 3, S, S] f32 (host or device), frame_positions: n distinct positions in
    // 0..total_frames-1 -> [n·h·w, D] on the backend, frame-major, then row, then column.
    Tensor image_tokens(const Tensor& pixels_batch, const std::vector<int64_t>& frame_positions,
                        int64_t total_frames, int64_t budget = kVisualTokenBudget) const;

    // Number of audio tokens for `mel_frames` (SPEC.md §2.6): floor(floor(mel_frames/2) / pool).
    int64_t audio_token_count(int64_t mel_frames) const;
    // mel [pieces, mel_bins, 3000] f32 -> [audio_token_count(mel_frames), D] on the backend,
    // `pieces_per_batch` pieces at a time from the tower to the tokens (the result does not
    // depend on it). progress(done, total): 30 s pieces through the audio tower so far (optional).
    Tensor audio_tokens(const Tensor& mel, int64_t mel_frames,
                        const std::function<void(int64_t, int64_t)>& progress = {},
                        int64_t pieces_per_batch = kAudioPiecesPerBatch) const;

    int dim() const { return dim_; }
    const SiglipVision& vision() const { return vision_; }
    const WhisperEncoder& audio() const { return audio_; }

private:
    // Linear -> GELU(erf) -> Linear (mm_projector_type mlp2x_gelu).
    struct Projector {
        QTensor w0;
        Tensor b0;
        QTensor w2;
        Tensor b2;
    };
    Tensor project(const Projector& p, const Tensor& x) const;
    // Audio tokens first..first+n-1 (of `total`) from their k·n Whisper states.
    Tensor audio_glue(const Tensor& states, int64_t first, int64_t total) const;
    Tensor norm(const Tensor& x, const Tensor& w) const;

    Backend& be_;
    io::MediaConfig mm_;
    int dim_;
    int padded_grid_;
    SiglipVision vision_;
    WhisperEncoder audio_;
    Projector img_proj_, aud_proj_;
    Tensor img_norm_, aud_norm_, llm_norm_, aud_pool_;
    PositionalMlp pos_h_, pos_w_, pos_t_;
};

}  // namespace vidi::model
