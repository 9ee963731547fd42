// tiny-a's decoder on a backend ("cpu" by default), for tests of the decoder and of generation.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

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

// A decoder test's backend and dtype: the CPU (f32), and CUDA in bf16 and in fp16 when the
// build has it and a GPU is there (tests over every backend and GPU dtype).
struct DecoderBackend {
    const char* name;  // cpu, cuda_bf16, cuda_fp16
    const char* kind;  // make_backend's
    DType dtype;
    std::unique_ptr<Backend> make() const { return make_backend(kind, 0, dtype); }
};
inline void PrintTo(const DecoderBackend& b, std::ostream* os) { *os << b.name; }
inline std::vector<DecoderBackend> decoder_backends() {
    std::vector<DecoderBackend> v{{"cpu", "cpu", DType::f32}};
    if (cuda_available()) {
        v.push_back({"cuda_bf16", "cuda", DType::bf16});
        v.push_back({"cuda_fp16", "cuda", DType::f16});
    }
    return v;
}

}  // namespace vidi::test
