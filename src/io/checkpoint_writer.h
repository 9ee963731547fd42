// Random-weight checkpoints in the official Vidi layout (sharded bf16 safetensors, index,
// config.json, tower configs, tokenizer.model), streamed to disk tensor by tensor so that
// even the full 9B shapes never sit in memory. Benchmarks and tests use these.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "io/checkpoint.h"

namespace vidi::io {

struct RandomCheckpointOptions {
    std::string out_dir;  // created; must not already hold files
    uint64_t seed = 0;
    uint64_t shard_bytes = 5'000'000'000;  // a shard is closed before it would exceed this
    std::string tokenizer_model;           // copied when set; else a Gemma-style one is built
    // Called as data is written (bytes so far, total bytes), at least once per tensor chunk.
    std::function<void(uint64_t written, uint64_t total)> progress;
};

struct RandomCheckpointSummary {
    int shards = 0;
    int tensors = 0;
    uint64_t bytes = 0;  // tensor data bytes
};

// `config` is a config.json object; tower directories it names (relative paths) are
// resolved against `config_dir` and their config.json copied beside the new checkpoint.
RandomCheckpointSummary write_random_checkpoint(const nlohmann::json& config, const std::string& config_dir,
                                                const RandomCheckpointOptions& options);

// "model-00001-of-00004.safetensors" for shard i (0-based) of n.
std::string shard_name(size_t i, size_t n);
// Creates `dir`; refuses (vidi::Error) when it exists and is not an empty directory.
void create_empty_dir(const std::string& dir);
// Copies config_dir/<tower>/config.json to out_dir for towers named by a relative directory.
void copy_tower_configs(const nlohmann::json& config, const std::string& config_dir, const std::string& out_dir);

// config.json of the released Vidi1.5-9B (Gemma2-9B; towers by hub id, so the built-in
// SigLIP2-so400m and Whisper-large-v3 configs apply).
nlohmann::json vidi15_9b_config();

// Deterministic pseudo-random bf16 values for elements [begin, begin + count) of tensor
// `name`: a function of (seed, name, element index) only, so chunking does not matter.
// Approximately normal (Irwin-Hall sum of 4 uniforms): matrices N(0, 0.02), biases
// N(0, 0.01), Gemma norm offsets N(0, 0.02), plain norm scales `norm_center` + N(0, 0.02).
void fill_random_bf16(const std::string& name, TensorKind kind, uint64_t seed, int64_t begin, int64_t count,
                      uint16_t* out, float norm_center = 1.0f);

}  // namespace vidi::io
