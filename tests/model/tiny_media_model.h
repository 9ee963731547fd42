// The golden tiny-a checkpoint's media side on the CPU backend, shared by the media tests.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "model/config.h"
#include "io/safetensors.h"
#include "model/vidi15/media_encoder.h"
#include "support/test_support.h"

namespace vidi::test {

struct TinyMediaModel {
    model::ModelConfig config = model::load_config(tiny_model_dir());
    io::TensorStore weights = io::TensorStore::open(tiny_model_dir());
    std::unique_ptr<Backend> backend = make_cpu_backend(2);
    model::vidi15::MediaEncoder encoder{config, model::WeightLoader(weights, *backend)};
};

}  // namespace vidi::test
