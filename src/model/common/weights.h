// Checked access to the checkpoint tensors of one module: every tensor is verified to be
// a float tensor of the shape the config implies before the backend sees it, so a
// mismatched checkpoint fails with the tensor's name, expected and found shape.
// Linear weights go through linear(): they may be stored quantised in the checkpoint
// (`vidi quantize`: codes in NAME, scales in NAME_scale) or be quantised here at load time.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace vidi::model {

struct LoadOptions {
    QuantFormat linear_format;                    // bf16 checkpoints' linear weights are stored so
    std::set<std::string>* linear_names = nullptr;  // if set, collects every linear weight's name
    std::set<std::string>* f32_names = nullptr;     // if set, collects every f32_weight()'s name
    // --compute fp8 with memory to spare: FP8 copies of the weights the FP8 GEMMs multiply (the
    // media layers', the towers' normed linears; Backend::keep_fp8_copy) are kept instead of
    // converting them at each call.
    bool fp8_copies = false;
};

class WeightLoader {
public:
    WeightLoader(const io::TensorStore& store, Backend& backend, LoadOptions options = {}, std::string prefix = "");

    // A weight for norms, biases and convolutions: backend.weight() of the checked tensor.
    Tensor weight(const std::string& name, const Shape& expected) const;
    // A weight of ops that compute in f32 (the positional MLPs): backend.f32_weight().
    Tensor f32_weight(const std::string& name, const Shape& expected) const;
    // A linear (or embedding) weight [N, K]: as stored, or quantised to the load format
    // when its rows fit that format.
    QTensor linear(const std::string& name, const Shape& expected) const;
    // An activation copy (act_dtype) for element-wise use, e.g. position tables.
    Tensor activation(const std::string& name, const Shape& expected) const;
    // With LoadOptions::fp8_copies, each of `weights` also kept in FP8 (Backend::keep_fp8_copy).
    void keep_fp8_copies(const std::vector<const QTensor*>& weights) const;
    // With LoadOptions::fp8_copies, q, k and v kept in FP8 as one block with their biases
    // (Backend::keep_fp8_copies_joined): a tower's attention runs them as one GEMM.
    void keep_fp8_copies_joined(const std::array<NormedLinear, 3>& qkv) const;
    bool has(const std::string& name) const { return store_.has(prefix_ + name); }
    // A loader for a sub-module: prefix + more; at(): an absolute prefix.
    WeightLoader sub(const std::string& more) const { return at(prefix_ + more); }
    WeightLoader at(const std::string& prefix) const { return WeightLoader(store_, be_, options_, prefix); }
    const std::string& prefix() const { return prefix_; }
    const LoadOptions& options() const { return options_; }
    const io::TensorStore& store() const { return store_; }
    Backend& backend() const { return be_; }

private:
    Tensor checked(const std::string& name, const Shape& expected) const;
    QTensor stored_quantized(const std::string& full, const Shape& expected) const;
    const io::TensorStore& store_;
    Backend& be_;
    LoadOptions options_;
    std::string prefix_;
};


}  // namespace vidi::model
