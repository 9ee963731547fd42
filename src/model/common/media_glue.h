// The part of the media glue both Vidi families share (SPEC.md §3.5-§4, docs/vidi-7b.md §3.4-§4):
// a pooled visual grid through the image projector, mm_rand_img_norm, the three positional
// MLPs and mm_rand_llm_norm; Whisper states through the audio pool (Conv1d, kernel = stride =
// mm_audio_pool_size), the audio projector, mm_rand_aud_norm, pos_t and mm_rand_llm_norm. The
// families differ in what feeds the grid and in the widths, which come from the weights:
// Vidi1.5 pools audio A→D and projects D→D, Vidi-7B pools A→A and projects A→D.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"
#include "model/common/positional.h"
#include "model/common/weights.h"
#include "model/common/whisper.h"
#include "model/config.h"
#include "model/media_tokenizer.h"

namespace vidi::model {

class MediaGlue {
public:
    // image_in: the width of a visual grid cell; audio_pool_out: the audio pool's output width.
    MediaGlue(const ModelConfig& config, const WeightLoader& root, int64_t image_in, int64_t audio_pool_out);

    // grid [n, h, w, image_in] of the frames at frame_positions (of total_frames) -> tokens
    // [n·h·w, D] after mm_rand_llm_norm; rows and columns get pos_h/pos_w(N = pos_n, l = h/w).
    Tensor image_tokens(const Tensor& grid, int64_t pos_n, const std::vector<int64_t>& frame_positions,
                        int64_t total_frames) const;
    // The positions image_tokens() adds to an h×w grid of a video of total_frames frames,
    // computed now (MediaTokenizer::prepare_video) and kept for its batches.
    void prepare_image_positions(int64_t pos_n, int64_t h, int64_t w, int64_t total_frames) const {
        image_positions(pos_n, h, w, total_frames);
    }

    // floor(floor(mel_frames · out/in) / pool) (SPEC.md §2.6).
    int64_t audio_token_count(const WhisperEncoder& tower, int64_t mel_frames) const;
    // mel [pieces, mel_bins, 3000] through `tower` and the audio glue, `pieces_per_batch`
    // pieces at a time from the tower to the tokens (the result does not depend on it)
    // -> [audio_token_count(mel_frames), D]. progress(done, total): pieces through the tower.
    Tensor audio_tokens(const WhisperEncoder& tower, const Tensor& mel, int64_t mel_frames,
                        const std::function<void(int64_t, int64_t)>& progress,
                        int64_t pieces_per_batch = kAudioPiecesPerBatch) const;
    // The two halves of a batch's way (MediaTokenizer::unplaced_audio_tokens and
    // place_audio_tokens), and the pieces a batch takes: pieces_per_batch rounded up to a
    // whole number of tokens.
    Tensor unplaced_audio_tokens(const WhisperEncoder& tower, const Tensor& mel, int64_t tokens) const;
    Tensor place_audio_tokens(const Tensor& unplaced, int64_t first_token, int64_t total) const;
    int64_t audio_pieces_per_batch(const WhisperEncoder& tower, int64_t pieces_per_batch) const;

private:
    // Linear -> GELU(erf) -> Linear (mm_projector_type mlp2x_gelu).
    struct Projector {
        QTensor w0;
        Tensor b0;
        QTensor w2;
        Tensor b2;
    };
    Projector projector(const WeightLoader& w, int64_t in) const;
    Tensor project(const Projector& p, const Tensor& x) const;
    // audio_token_count(), refusing mel_frames that give fewer than two tokens (pos_t needs two).
    int64_t checked_audio_tokens(const WhisperEncoder& tower, int64_t mel_frames) const;
    Tensor norm(const Tensor& x, const Tensor& w) const;
    // A video's image positions: pos_h and pos_w of its h×w grid, pos_t of each of its frames.
    struct ImagePositions {
        int64_t pos_n = -1, h = 0, w = 0, frames = 0;
        Tensor rows, cols, times;  // [h, D], [w, D], [frames, D]
    };
    // Those of the video asked for, computed on its first batch and kept for the next ones:
    // per batch, the three f32 positional MLPs cost more than the projector (bench/RESULTS.md).
    ImagePositions image_positions(int64_t pos_n, int64_t h, int64_t w, int64_t total_frames) const;

    Backend& be_;
    MediaConfig mm_;
    int64_t dim_;
    Projector img_proj_, aud_proj_;
    Tensor img_norm_, aud_norm_, llm_norm_, aud_pool_;
    PositionalMlp pos_h_, pos_w_, pos_t_;
    mutable ImagePositions positions_;  // the engine runs one call at a time (vidi/vidi.h)
};

// The audio half of MediaTokenizer, which both families take from Whisper and MediaGlue.
class GlueAudioTokenizer : public MediaTokenizer {
public:
    int64_t audio_token_count(int64_t mel_frames) const final {
        return glue().audio_token_count(whisper(), mel_frames);
    }
    Tensor audio_tokens(const Tensor& mel, int64_t mel_frames,
                        const std::function<void(int64_t, int64_t)>& progress = {}) const final {
        return glue().audio_tokens(whisper(), mel, mel_frames, progress);
    }
    int64_t audio_pieces_per_batch() const final {
        return glue().audio_pieces_per_batch(whisper(), kAudioPiecesPerBatch);
    }
    Tensor unplaced_audio_tokens(const Tensor& mel, int64_t tokens) const final {
        return glue().unplaced_audio_tokens(whisper(), mel, tokens);
    }
    Tensor place_audio_tokens(const Tensor& unplaced, int64_t first, int64_t total) const final {
        return glue().place_audio_tokens(unplaced, first, total);
    }

protected:
    virtual const MediaGlue& glue() const = 0;
    virtual const WhisperEncoder& whisper() const = 0;
};

}  // namespace vidi::model
