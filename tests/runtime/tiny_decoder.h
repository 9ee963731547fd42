// tiny-a's decoder on a backend ("cpu" by default), for tests of the decoder and of generation.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/vidi15/gemma2.h"
#include "support/test_support.h"

namespace vidi::test {

struct TinyDecoder {
    explicit TinyDecoder(const std::string& backend_kind = "cpu")
        : backend(backend_kind == "cpu" ? make_cpu_backend(0) : make_backend(backend_kind)),
          decoder(config, model::WeightLoader(weights, *backend)) {}
    model::ModelConfig config = model::load_config(tiny_model_dir());
    io::TensorStore weights = io::TensorStore::open(tiny_model_dir());
    std::unique_ptr<Backend> backend;
    model::vidi15::Gemma2 decoder;
};

// "cpu", and "cuda" when the build has it and a GPU is there (tests over every backend).
inline std::vector<std::string> backends_present() {
    std::vector<std::string> kinds{"cpu"};
    if (cuda_available()) kinds.push_back("cuda");
    return kinds;
}

}  // namespace vidi::test
