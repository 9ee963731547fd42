// tiny-a's decoder on the CPU backend, for tests of the decoder and of generation.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/gemma2.h"
#include "support/test_support.h"

namespace vidi::test {

struct TinyDecoder {
    io::ModelConfig config = io::ModelConfig::load(tiny_model_dir());
    io::TensorStore weights = io::TensorStore::open(tiny_model_dir());
    std::unique_ptr<Backend> backend = make_cpu_backend(0);
    model::Gemma2 decoder{config, model::WeightLoader(weights, *backend)};
};

}  // namespace vidi::test
