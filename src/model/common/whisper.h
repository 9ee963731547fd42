// The Whisper encoder as Hugging Face's WhisperEncoder computes it: two GELU convolutions
// (the second with stride 2), learned positions, pre-LN transformer layers and a final
// LayerNorm. One 30 s piece of log-mel [mel_bins, 3000] gives [1500, d_model].
#pragma once

#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "model/common/weights.h"

namespace vidi::model {

// 30-second audio pieces put through the audio tower together (larger GEMMs, fewer launches).
constexpr int64_t kAudioPiecesPerBatch = 4;

class WhisperEncoder {
public:
    WhisperEncoder(const ModelConfig& config, const WeightLoader& root,
                   const std::string& prefix = "model.mm_aud.encoder.");

    // mel [mel_bins, frames] f32 (host or device; frames = 2·max_positions) -> [frames/2, d_model];
    // mel [n, mel_bins, frames] (n independent 30-second pieces) -> [n·frames/2, d_model].
    Tensor forward(const Tensor& mel) const;

    int d_model() const { return cfg_.d_model; }
    int input_frames() const { return 2 * cfg_.max_positions; }  // 3000
    int output_frames() const { return cfg_.max_positions; }     // 1500

private:
    struct Layer {
        Tensor ln1_w, ln1_b;
        QTensor q_w;
        Tensor q_b;
        QTensor k_w, v_w;
        Tensor v_b;
        QTensor o_w;
        Tensor o_b, ln2_w, ln2_b;
        QTensor fc1_w;
        Tensor fc1_b;
        QTensor fc2_w;
        Tensor fc2_b;
        std::array<NormedLinear, 3> qkv() const { return {{{q_w, q_b}, {k_w, {}}, {v_w, v_b}}}; }  // k: no bias
    };
    AudioConfig cfg_;
    Backend& be_;
    Tensor conv1_w_, conv1_b_, conv2_w_, conv2_b_, pos_, ln_w_, ln_b_;
    std::vector<Layer> layers_;
};

}  // namespace vidi::model
