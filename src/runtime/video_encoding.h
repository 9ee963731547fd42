// A video through the loaded model: decode and sample -> the family's media tokens ->
// per-layer media K/V (the visual ones while later frames still decode).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "model/decoder.h"
#include "runtime/loaded_model.h"
#include "vidi/vidi.h"

namespace vidi::runtime {

// Media tokens of one video (on the backend), as the family's media tokenizer gives them.
struct MediaTokens {
    Tensor image;  // [F·h·w, D]
    Tensor audio;  // [n, D] or undefined when the video has no audio
    int64_t frames = 0, grid_h = 0, grid_w = 0;
    double duration = 0;
    std::optional<QuantFormat> kv;  // the media K/V format planned for this video (unset: plan it)
    // The visual tokens' K/V, computed while the frames were still being decoded (media_tokens);
    // unset when the tokens came from elsewhere (a cache file): encode() computes it then.
    std::shared_ptr<model::MediaKV> visual_kv;
    std::shared_ptr<model::MediaKV> audio_kv;  // the same for the audio tokens
};

// Front-end outputs a caller wants to see (for `vidi dump`).
struct MediaCapture {
    std::set<int64_t> frames;             // which sampled frames to keep
    std::map<int64_t, Tensor> pixels;     // frame -> [3, S, S] f32
    Tensor mel;                           // [pieces, mels, 3000]
    int64_t mel_frames = 0;
};

class EncodedVideo : public Video {
public:
    MediaTokens tokens;
    model::MediaKV visual, audio;
    double seconds = 0;

    double duration() const override { return tokens.duration; }
    int64_t frames() const override { return tokens.frames; }
    int64_t visual_tokens() const override { return visual.tokens; }
    int64_t audio_tokens() const override { return audio.tokens; }
    double encode_seconds() const override { return seconds; }
    std::vector<const model::MediaKV*> media() const { return {&visual, &audio}; }
    // The encoding time the first time it is asked for (Timings::media_s), then 0.
    double take_media_seconds() const { return media_reported_.exchange(true) ? 0.0 : seconds; }

private:
    mutable std::atomic<bool> media_reported_{false};
};

MediaTokens media_tokens(LoadedModel& model, const std::string& video_path, MediaCapture* capture = nullptr);
std::shared_ptr<EncodedVideo> encode(LoadedModel& model, MediaTokens tokens);
// media_tokens() then encode(); encode_seconds() covers both.
std::shared_ptr<EncodedVideo> encode_video(LoadedModel& model, const std::string& video_path);

}  // namespace vidi::runtime
