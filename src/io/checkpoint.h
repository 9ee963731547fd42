// A checkpoint directory's memory-mapped tensors checked against a list of expected
// tensors (name, shape, dtype). The list comes from the model family (model/family.h):
// io knows no model. Opening never copies weights.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

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
    bool required = true;  // absent -> listed as missing (false: optional, e.g. an untied lm_head)
    bool used = true;      // false: known but not needed by inference (SigLIP head, ...)
    // Read as a linear (or embedding) weight: may be stored quantised (`vidi quantize`) or be
    // quantised at load (--weights).
    bool linear = false;
    // Held in f32 by inference (WeightLoader::f32_weight: the positional MLPs), 2 bytes a value
    // more than the 16-bit rest.
    bool f32 = false;
    float init_center = 1.0f;  // make-checkpoint: where a norm_scale tensor's random values centre
};
using ExpectedTensors = std::vector<ExpectedTensor>;

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

// Checks a tensor store against the expected tensors; never throws for content problems.
ValidationReport validate(const ExpectedTensors& expected, const TensorStore& store);

// The names of the linear weights a model reads (ExpectedTensor::linear and used).
std::set<std::string> linear_weight_names(const ExpectedTensors& expected);
// The names of the weights held in f32 (ExpectedTensor::f32 and used).
std::set<std::string> f32_weight_names(const ExpectedTensors& expected);

class Checkpoint {
public:
    // The expected tensors of a store (a family may look at the names, e.g. for a prefix).
    using Layout = std::function<ExpectedTensors(const TensorStore&)>;
    // Maps every shard and validates it against `layout`. Throws vidi::Error when a file is
    // unreadable or corrupt; validation problems go to report() (see require_usable).
    static Checkpoint open(const std::string& dir, const Layout& layout);

    const std::string& dir() const { return dir_; }
    const TensorStore& store() const { return store_; }
    const ValidationReport& report() const { return report_; }
    const ExpectedTensors& expected() const { return expected_; }
    std::set<std::string> linear_weights() const { return linear_weight_names(expected_); }
    std::set<std::string> f32_weights() const { return f32_weight_names(expected_); }
    bool usable() const { return report_.usable(); }
    // Throws a vidi::Error holding the whole report unless the checkpoint is usable.
    void require_usable() const;

    bool has(const std::string& name) const { return store_.has(name); }
    Tensor get(const std::string& name) const { return store_.get(name); }  // zero-copy
    ParamCounts params() const;

private:
    std::string dir_;
    TensorStore store_;
    ExpectedTensors expected_;
    ValidationReport report_;
};

}  // namespace vidi::io
