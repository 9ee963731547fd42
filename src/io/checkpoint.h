// A Vidi checkpoint directory opened and checked: config.json (+ tower configs), the
// memory-mapped tensors, and a validation of every tensor's name, shape and dtype against
// what the config implies (SPEC.md §1). Opening never copies weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/safetensors.h"
#include "vidi/tensor.h"

namespace vidi::io {

enum class Component { llm, vision, audio, glue };
const char* component_name(Component c);  // "llm", "vision", "audio", "glue"

// What a tensor is, which decides how make-checkpoint initialises it.
enum class TensorKind {
    matrix,       // weights, embeddings, convolution kernels: ~N(0, 0.02)
    bias,         // additive biases: small, around 0
    norm_offset,  // Gemma RMSNorm weight w applied as (1 + w): around 0
    norm_scale,   // LayerNorm / plain RMSNorm weight applied as w: around 1
};

struct ExpectedTensor {
    std::string name;
    Shape shape;
    Component component = Component::llm;
    TensorKind kind = TensorKind::matrix;
    bool required = true;  // absent -> listed as missing (false: lm_head and unused tensors)
    bool used = true;      // false: known but not needed by inference (SigLIP head, ...)
};

// Vision tower prefixes. The official model saves SiglipVisionTower (a SiglipVisionModel),
// whose parameters live under `vision_model.`; the golden tiny-a checkpoint omits it.
inline constexpr const char* kVisionPrefixOfficial = "model.mm_vis.vision_model.";
inline constexpr const char* kVisionPrefixFlat = "model.mm_vis.";
inline constexpr const char* kAudioPrefix = "model.mm_aud.encoder.";

// Every tensor the config implies, LLM first, then vision, audio, glue.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c,
                                             const std::string& vision_prefix = kVisionPrefixOfficial);

struct ValidationReport {
    std::vector<std::string> errors;      // "tensor X: expected [..] found [..]", dtype problems
    std::vector<std::string> missing;     // required tensors the checkpoint lacks
    std::vector<std::string> unexpected;  // tensors the config does not explain
    std::vector<std::string> unused;      // present, known, not needed by inference
    size_t checked = 0;                   // tensors compared against the expectation

    bool usable() const { return errors.empty() && missing.empty() && unexpected.empty(); }
    std::string to_string() const;  // the whole report, one problem per line
};

// Parameter counts of the tensors present in the checkpoint, per component.
struct ParamCounts {
    int64_t llm = 0, vision = 0, audio = 0, glue = 0;
    int64_t used = 0;  // parameters inference actually reads
    int64_t total() const { return llm + vision + audio + glue; }
};

// Bytes to hold `params` weights if all were stored as bf16, int8 (per-channel) or int4
// (groups of 64 with an f32 scale each): an upper bound, norms and biases stay bf16.
struct WeightBytes {
    int64_t bf16 = 0, int8 = 0, q4 = 0;
};
WeightBytes weight_bytes(int64_t params);

// A weight quantised by `vidi quantize` keeps its name for the codes (I8 [N, K] for 8 bits,
// U8 [N, K/2] for 4 bits) and stores F32 scales [N, K/group] under NAME + this suffix.
inline constexpr const char* kQuantScaleSuffix = "_scale";
// A quantised tensor's problem ("" when its codes and scales fit the expected [N, K]).
std::string check_quantized(const TensorStore& store, const std::string& name, const Shape& expected);
// The shape a tensor stands for: unpacked for 4-bit codes.
Shape logical_shape(const TensorStore& store, const std::string& name);

// Checks a tensor store against a config; never throws for checkpoint content problems.
ValidationReport validate(const ModelConfig& c, const TensorStore& store, const std::string& vision_prefix);

// The prefix the store's vision tensors use (official unless only flat names are present).
std::string detect_vision_prefix(const TensorStore& store);

class Checkpoint {
public:
    // Reads config + tower configs, maps every shard and validates. Throws vidi::Error when a
    // file is unreadable or corrupt; validation problems go to report() (see require_usable).
    static Checkpoint open(const std::string& dir);

    const std::string& dir() const { return dir_; }
    const ModelConfig& config() const { return config_; }
    const TensorStore& store() const { return store_; }
    const ValidationReport& report() const { return report_; }
    const std::vector<ExpectedTensor>& expected() const { return expected_; }
    const std::string& vision_prefix() const { return vision_prefix_; }
    bool usable() const { return report_.usable(); }
    // Throws a vidi::Error holding the whole report unless the checkpoint is usable.
    void require_usable() const;

    bool has(const std::string& name) const { return store_.has(name); }
    Tensor get(const std::string& name) const { return store_.get(name); }  // zero-copy
    ParamCounts params() const;

private:
    std::string dir_;
    ModelConfig config_;
    TensorStore store_;
    std::string vision_prefix_;
    std::vector<ExpectedTensor> expected_;
    ValidationReport report_;
};

}  // namespace vidi::io
