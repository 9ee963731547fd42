// A family's media side as the runtime sees it: sampled frames and log-mel audio in, media
// tokens [n, D] out (after the family's towers and glue), ready for Decoder::encode_media.
//
// Frames stream in batches: image_tokens() takes any batch of frames with their positions
// 0..F-1 in the video and the total F (known up front from the duration), and returns
// exactly the rows of the full [F·h·w, D] token matrix that belong to those frames, so
// batches can be concatenated in frame order.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"

namespace vidi::model {

class MediaTokenizer {
public:
    virtual ~MediaTokenizer() = default;

    virtual int dim() const = 0;  // D: the decoder's width
    // Token grid side h (= w) per frame for a video of `total_frames` frames under a budget
    // of visual tokens (Family::default_visual_budget).
    virtual int grid_side(int64_t total_frames, int64_t budget) const = 0;
    // pixels_batch [n, 3, S, S] (host f32 or device), frame_positions: n distinct positions in
    // 0..total_frames-1 -> [n·h·w, D] on the backend, frame-major, then row, then column.
    virtual Tensor image_tokens(const Tensor& pixels_batch, const std::vector<int64_t>& frame_positions,
                                int64_t total_frames, int64_t budget) const = 0;
    // The part of a video's image_tokens() that needs no frames (its positional tables),
    // queued now: called while the first frames decode, so that the first batch does not
    // wait on it. Optional; image_tokens() makes what was not prepared.
    virtual void prepare_video(int64_t total_frames, int64_t budget) const = 0;

    // Number of audio tokens for `mel_frames` frames of log-mel.
    virtual int64_t audio_token_count(int64_t mel_frames) const = 0;
    // The audio for a caller that learns how long it is only at its end (the runtime feeds
    // the tower each batch of 30 s pieces while the rest is decoded): the tokens of a batch
    // (audio_pieces_per_batch() consecutive whole pieces, fewer at the end) through the tower
    // and the glue up to the positions, which depend on the total (pos_t spreads over every
    // token); then, once the total is known, each batch's rows placed. A batch's rows placed
    // are those audio_tokens() gives there, bit for bit.
    virtual int64_t audio_pieces_per_batch() const = 0;
    // mel [n, mel_bins, 3000] -> the first `tokens` of the pieces' tokens, unplaced [tokens, D].
    virtual Tensor unplaced_audio_tokens(const Tensor& mel, int64_t tokens) const = 0;
    // Rows first.. of an audio of `total` tokens: pos_t and mm_rand_llm_norm added.
    virtual Tensor place_audio_tokens(const Tensor& unplaced, int64_t first, int64_t total) const = 0;
    // mel [pieces, mel_bins, 3000] -> [audio_token_count(mel_frames), D] on the backend.
    // progress(done, total): 30 s pieces through the audio tower so far (optional).
    virtual Tensor audio_tokens(const Tensor& mel, int64_t mel_frames,
                                const std::function<void(int64_t, int64_t)>& progress = {}) const = 0;
};

}  // namespace vidi::model
