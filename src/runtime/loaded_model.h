// The loaded model on one backend: the checkpoint opened and validated, its family's
// modules built (model/family.h), the tokenizer, and answering a prompt. The Engine
// (engine.cpp) is a thin public face over it; video_encoding.h and token_files.h do the
// rest of a request.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/family.h"
#include "model/media_tokenizer.h"
#include "runtime/batch_generate.h"
#include "runtime/deferred_release.h"
#include "runtime/generate.h"
#include "vidi/vidi.h"

namespace vidi::runtime {

class EncodedVideo;

class LoadedModel {
public:
    explicit LoadedModel(const EngineOptions& options);

    const EngineOptions& options() const { return options_; }
    const model::Family& family() const { return *config_.family; }
    const model::ModelConfig& config() const { return config_; }
    Backend& backend() { return *backend_; }
    std::string backend_name() const { return backend_->name(); }
    const model::Decoder& decoder() const { return *decoder_; }
    const model::MediaTokenizer& media() const { return *media_; }
    const io::Tokenizer& tokenizer() const { return *tokenizer_; }
    // Identifies the checkpoint in saved media files.
    const std::string& fingerprint() const { return fingerprint_; }
    const QuantFormat& weight_format() const { return weight_format_; }

    // The family's prompt for one user turn, with the media's place or text only.
    std::vector<int32_t> prompt(const std::string& text, bool with_media) const;
    GenerationResult run(const std::vector<int32_t>& prompt, const EncodedVideo* video, int max_new_tokens,
                         bool keep_prompt_logits = false);
    // Several prompts about `video` (null: text-only) stepped together (Engine::batch).
    BatchGeneration batch(const EncodedVideo* video) const;
    std::optional<DeviceMemory> device_memory() const { return backend_->device_memory(); }

    // With VIDI_SYNC_PROGRESS=1 in the environment every report first waits for the GPU, so
    // the stamps time the GPU's work per stage rather than the host's launches (diagnostics).
    void progress(const std::string& stage, int64_t done, int64_t total) const;
    // VIDI_PROFILE=1: the device time of each model part since the last report.
    void report_profile() const;
    void notice(const std::string& line) const;
    void warn(const std::string& line) const;

    // A finished video's decoders, closed on a thread of their own while the request goes on
    // (deferred_release.h); media_tokens() waits for the last ones before opening new ones.
    DeferredRelease& retired() { return retired_; }

    // A throwaway pass through every part of a request (positions, log-mel, the towers, the
    // media layers, a prompt and a step), which the constructor runs on a GPU: the one-time
    // costs of a process's first calls fall at load rather than on its first request. It
    // changes no later result; where it fails (too little memory) a notice says so.
    void warm_up();

private:
    EngineOptions options_;
    bool sync_progress_ = false;
    model::ModelConfig config_;
    io::TensorStore weights_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<io::Tokenizer> tokenizer_;
    std::unique_ptr<model::MediaTokenizer> media_;
    std::unique_ptr<model::Decoder> decoder_;
    std::vector<int32_t> stop_ids_;
    std::string fingerprint_;
    QuantFormat weight_format_;
    DeferredRelease retired_;  // last: released decoders go before the backend they use
};

}  // namespace vidi::runtime
