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

// Consecutive token rows [m, D] starting at token `first` (media_tokenizer's streams).
using AudioRows = std::function<void(int64_t first, const Tensor& rows)>;

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
    // The audio tokens a batch of 30 s pieces at a time, in order: rows(first_token, [m, D] on
    // the backend). Only a batch is held at once, so an hour's 36 000 tokens need never exist
    // whole on the device (runtime/media_kv_writer.h). audio_tokens() is the same, gathered.
    virtual void stream_audio_tokens(const Tensor& mel, int64_t mel_frames, const AudioRows& rows,
                                     const std::function<void(int64_t, int64_t)>& progress = {}) const = 0;
    // mel [pieces, mel_bins, 3000] -> [audio_token_count(mel_frames), D] on the backend.
    // progress(done, total): 30 s pieces through the audio tower so far (optional).
    virtual Tensor audio_tokens(const Tensor& mel, int64_t mel_frames,
                                const std::function<void(int64_t, int64_t)>& progress = {}) const = 0;
};

}  // namespace vidi::model
