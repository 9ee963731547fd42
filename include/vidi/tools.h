// The checkpoint tools of the `vidi` command, as library calls: inspect a checkpoint, write
// a random-weight one, quantise one, and dump a request's tensors under the golden files'
// names (for checking correctness from outside).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vidi/vidi.h"

namespace vidi {

// --- vidi inspect ------------------------------------------------------------------------
struct CheckpointReport {
    bool usable = false;  // every tensor present with the shape and dtype its config implies
    std::string text;     // the summary for people, one line per topic
    std::string json;     // the same as a JSON object
};
struct InspectOptions {
    // Read every floating weight, counting NaN and infinity (a checkpoint that holds any is not
    // usable: it answers with NaN logits). Reads all the tensor bytes: seconds for 20 GB.
    bool values = false;
    std::function<void(uint64_t done, uint64_t total)> progress;  // bytes read by the value scan
};
// Opens and validates the checkpoint in `dir` (its family from config.json). Throws
// vidi::Error when it cannot be read at all (no config, corrupt shard, unknown family).
CheckpointReport inspect_checkpoint(const std::string& dir, const InspectOptions& options = {});

// --- vidi make-checkpoint ---------------------------------------------------------------
struct MakeCheckpointOptions {
    std::string config_file;      // a config.json (tower directories beside it are copied), or
    std::string preset;           // a built-in one (checkpoint_presets())
    std::string out_dir;          // created; must be new or empty
    std::string tokenizer_model;  // copied when set; else the family builds one
    uint64_t seed = 0;
    uint64_t shard_bytes = 5'000'000'000;
    std::function<void(uint64_t written, uint64_t total)> progress;
};
struct MakeCheckpointSummary {
    int shards = 0, tensors = 0;
    uint64_t bytes = 0;  // tensor data
};
MakeCheckpointSummary make_checkpoint(const MakeCheckpointOptions& options);
std::vector<std::string> checkpoint_presets();  // the names --preset takes

// --- vidi quantize -------------------------------------------------------------------------
// A bf16 checkpoint -> the same layout with every linear weight that fits the format stored
// quantised (codes under the weight's name, F32 scales under NAME_scale), the rest copied.
struct QuantizeOptions {
    std::string model_dir, out_dir;
    std::string weights = "int4";  // int8, int4 (groups of 64), int4/g128, int8/g64, ...
    uint64_t shard_bytes = 4'000'000'000;
    std::function<void(uint64_t read, uint64_t total)> progress;  // bytes of source tensors
};
struct QuantizeSummary {
    std::string format;  // the format's name, e.g. "int4/g64"
    int quantized = 0, copied = 0, shards = 0;
    uint64_t bytes_in = 0, bytes_out = 0;
};
QuantizeSummary quantize_checkpoint(const QuantizeOptions& options);

// --- vidi dump -----------------------------------------------------------------------------
struct DumpRequest {
    std::string video;                // empty: a text-only turn (the text_* tensors)
    std::string query;                // a retrieval query, or
    std::string question;             // a free-form question
    std::vector<int64_t> frames{0};   // sampled frames whose pixel values to write
    std::vector<int64_t> forced_ids;  // appended with teacher forcing (forced_logits)
    int max_new_tokens = 16;
    std::string out;                  // the .safetensors file to write
};
// Runs the request on a freshly opened engine and writes its tensors; returns how many.
size_t dump_tensors(const EngineOptions& options, const DumpRequest& request);

// --- mapped checkpoints ----------------------------------------------------------------------
// Installs a SIGBUS handler that names the checkpoint file a fault hit (a shard truncated or
// rewritten in place while its mapping is read) on stderr, then lets SIGBUS end the process.
// For programs that own their signal handling: the CLI calls it first thing.
void name_truncated_checkpoints_on_sigbus();

}  // namespace vidi
