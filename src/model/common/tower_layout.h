// The tensor names and shapes of the shared blocks of a Vidi checkpoint (Hugging Face's
// SiglipVisionModel and WhisperEncoder naming), and a builder the families use for theirs.
#pragma once

#include <string>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace vidi::model {

// Vision tower prefixes. The official model saves SiglipVisionTower (a SiglipVisionModel),
// whose parameters live under `vision_model.`; the golden tiny-a checkpoint omits it.
inline constexpr const char* kVisionPrefixOfficial = "model.mm_vis.vision_model.";
inline constexpr const char* kVisionPrefixFlat = "model.mm_vis.";
inline constexpr const char* kAudioPrefix = "model.mm_aud.encoder.";

// The prefix the store's vision tensors use (official unless only flat names are present).
std::string detect_vision_prefix(const io::TensorStore& store);

// Appends expected tensors: a section at a time, each tensor named prefix + suffix.
class LayoutBuilder {
public:
    explicit LayoutBuilder(io::ExpectedTensors& out) : out_(out) {}

    // Every following tensor belongs to `c`, is required iff used, and is named prefix + suffix.
    void section(io::Component c, std::string prefix, bool used = true);
    void add(const std::string& suffix, Shape shape, io::TensorKind kind);
    void make_last_optional() { out_.back().required = false; }
    io::ExpectedTensor& last() { return out_.back(); }
    // NAME.weight [out, in] (+ NAME.bias [out]), read as a linear weight (may be quantised).
    void linear(const std::string& name, int64_t out, int64_t in, bool bias = true);
    // NAME.weight [out, in] and NAME.bias [out] of a small MLP that computes in f32 (never
    // quantised; WeightLoader::f32_weight).
    void f32_linear(const std::string& name, int64_t out, int64_t in);
    void layer_norm(const std::string& name, int64_t width);

private:
    io::ExpectedTensors& out_;
    io::Component component_ = io::Component::llm;
    std::string prefix_;
    bool used_ = true;
};

// SiglipVisionModel under `prefix` (layers past select_layer and the pooling head: known, unused).
void add_siglip_tensors(LayoutBuilder& b, const ModelConfig& c, const std::string& prefix);
// WhisperEncoder under kAudioPrefix.
void add_whisper_tensors(LayoutBuilder& b, const ModelConfig& c);

}  // namespace vidi::model
