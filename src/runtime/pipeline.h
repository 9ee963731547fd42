// The loaded model on one backend and the steps of a request: video -> media tokens ->
// per-layer media K/V; question -> prompt ids -> generation. The Engine (engine.cpp) is a
// thin public face over this; `vidi dump` uses the steps directly.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "model/gemma2.h"
#include "model/media_tokens.h"
#include "runtime/batch_generate.h"
#include "runtime/generate.h"
#include "vidi/vidi.h"

namespace vidi::runtime {

// Media tokens of one video (on the backend), after mm_rand_llm_norm.
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
};

class Pipeline {
public:
    explicit Pipeline(const EngineOptions& options);

    const io::ModelConfig& config() const { return config_; }
    Backend& backend() { return *backend_; }
    std::optional<DeviceMemory> device_memory() const { return backend_->device_memory(); }
    std::string backend_name() const { return backend_->name(); }
    const model::Gemma2& decoder() const { return *decoder_; }
    const io::Tokenizer& tokenizer() const { return *tokenizer_; }
    // Identifies the checkpoint in saved media files.
    const std::string& fingerprint() const { return fingerprint_; }
    const QuantFormat& weight_format() const { return weight_format_; }

    MediaTokens media_tokens(const std::string& video_path, MediaCapture* capture = nullptr);
    std::shared_ptr<EncodedVideo> encode(MediaTokens tokens);
    // media_tokens() then encode(); encode_seconds() covers both.
    std::shared_ptr<EncodedVideo> encode_video(const std::string& video_path);

    void save_tokens(const MediaTokens& tokens, const std::string& path);
    MediaTokens load_tokens(const std::string& path);

    std::vector<int32_t> prompt(const std::string& text, bool with_media) const;
    GenerationResult run(const std::vector<int32_t>& prompt, const EncodedVideo* video, int max_new_tokens,
                         bool keep_prompt_logits = false);
    // Several prompts about `video` (null: text-only) stepped together (Engine::batch).
    BatchGeneration batch(const EncodedVideo* video) const;
    int stop_id() const;  // <end_of_turn>

    // VIDI_PROFILE=1: the device time of each model part since the last report.
    void report_profile() const {
        if (backend_->profiling())
            for (const std::string& line : backend_->profile_report()) notice(line);
    }

private:
    // With VIDI_SYNC_PROGRESS=1 in the environment every report first waits for the GPU, so
    // the stamps time the GPU's work per stage rather than the host's launches (diagnostics).
    void progress(const std::string& stage, int64_t done, int64_t total) const {
        if (!options_.progress) return;
        if (sync_progress_) backend_->synchronize();
        options_.progress(stage, done, total);
    }
    void notice(const std::string& line) const {
        if (options_.notice) options_.notice(line);
    }

    EngineOptions options_;
    bool sync_progress_ = false;
    io::ModelConfig config_;
    io::TensorStore weights_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<io::Tokenizer> tokenizer_;
    std::unique_ptr<model::MediaEncoder> media_encoder_;
    std::unique_ptr<model::Gemma2> decoder_;
    std::string fingerprint_;
    QuantFormat weight_format_;
};

}  // namespace vidi::runtime
