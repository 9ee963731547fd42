// The golden tiny-a checkpoint's media side on the CPU backend, shared by the media tests.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/media_tokens.h"
#include "support/test_support.h"

namespace vidi::test {

struct TinyMediaModel {
    io::ModelConfig config = io::ModelConfig::load(tiny_model_dir());
    io::TensorStore weights = io::TensorStore::open(tiny_model_dir());
    std::unique_ptr<Backend> backend = make_cpu_backend(2);
    model::MediaEncoder encoder{config, model::WeightLoader(weights, *backend)};
};

}  // namespace vidi::test
