// Checked access to the checkpoint tensors of one module: every tensor is verified to be
// a float tensor of the shape the config implies before the backend sees it, so a
// mismatched checkpoint fails with the tensor's name, expected and found shape.
#pragma once

#include <string>

#include "backend/backend.h"
#include "io/safetensors.h"

namespace vidi::model {

class WeightLoader {
public:
    WeightLoader(const io::TensorStore& store, Backend& backend, std::string prefix);

    // A weight for linear()/embed()/norms: backend.weight() of the checked tensor.
    Tensor weight(const std::string& name, const Shape& expected) const;
    // An activation copy (act_dtype) for element-wise use, e.g. position tables.
    Tensor activation(const std::string& name, const Shape& expected) const;
    bool has(const std::string& name) const { return store_.has(prefix_ + name); }
    // A loader for a sub-module: prefix + more.
    WeightLoader sub(const std::string& more) const { return WeightLoader(store_, be_, prefix_ + more); }
    const std::string& prefix() const { return prefix_; }

private:
    Tensor checked(const std::string& name, const Shape& expected) const;
    const io::TensorStore& store_;
    Backend& be_;
    std::string prefix_;
};

}  // namespace vidi::model
