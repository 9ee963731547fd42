// Random-weight checkpoints: the tensors of a list (model/family.h gives it) as sharded
// bf16 safetensors with their index, streamed to disk tensor by tensor so that even the
// full 9B shapes never sit in memory. model::write_random_checkpoint adds config.json, the
// tower configs and tokenizer.model. Benchmarks and tests use these.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "io/checkpoint.h"

namespace vidi::io {

struct RandomCheckpointOptions {
    std::string out_dir;  // created; must not already hold files
    uint64_t seed = 0;
    uint64_t shard_bytes = 5'000'000'000;  // a shard is closed before it would exceed this
    std::string tokenizer_model;           // copied when set; else the family builds one
    // Called as data is written (bytes so far, total bytes), at least once per tensor chunk.
    std::function<void(uint64_t written, uint64_t total)> progress;
};

struct RandomCheckpointSummary {
    int shards = 0;
    int tensors = 0;
    uint64_t bytes = 0;  // tensor data bytes
};

// Writes `tensors` with random values into options.out_dir (which must exist and be empty of
// shards): bf16 shards of at most shard_bytes and model.safetensors.index.json.
RandomCheckpointSummary write_random_tensors(const ExpectedTensors& tensors, const RandomCheckpointOptions& options);

// "model-00001-of-00004.safetensors" for shard i (0-based) of n.
std::string shard_name(size_t i, size_t n);
// An output directory that appears whole or not at all. DIR (new, or an empty directory: a
// mount point, a symlink's target) gets the files in DIR/.vidi-partial, locked for the run,
// and commit() moves them up; destroyed before (a failure: disk full, a bad input), the
// staging goes. An interrupted run leaves only the staging directory, which the next run
// clears; two runs into one DIR refuse each other. Refuses (vidi::Error) a DIR that holds
// anything else.
class StagedDir {
public:
    explicit StagedDir(const std::string& dir);
    ~StagedDir();
    StagedDir(const StagedDir&) = delete;
    StagedDir& operator=(const StagedDir&) = delete;
    const std::string& path() const { return staging_; }  // where the files go until commit()
    void commit();

private:
    std::string dir_, staging_;
    int lock_ = -1;  // the staging directory, flock'ed
    bool created_ = false, committed_ = false;
};

// Refuses (vidi::Error) writing `bytes` under `dir` when its file system has less room.
void require_free_space(const std::string& dir, uint64_t bytes);

// Deterministic pseudo-random bf16 values for elements [begin, begin + count) of tensor
// `name`: a function of (seed, name, element index) only, so chunking does not matter.
// Approximately normal (Irwin-Hall sum of 4 uniforms): matrices N(0, 0.02), biases
// N(0, 0.01), Gemma norm offsets N(0, 0.02), plain norm scales `norm_center` + N(0, 0.02).
void fill_random_bf16(const std::string& name, TensorKind kind, uint64_t seed, int64_t begin, int64_t count,
                      uint16_t* out, float norm_center = 1.0f);

}  // namespace vidi::io
