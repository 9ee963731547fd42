// Flags shared by the commands that run the model, and the progress line on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include "vidi/vidi.h"

namespace vidi::app {

struct EngineFlags {
    EngineOptions options;
    GenerateOptions generate;
    bool quiet = false;
};

// --model, --backend, --dtype, --threads, --frame-batch, --decode-lanes, --decoder, --max-new-tokens,
// --gpu-memory, --weights, --media-kv, --visual-tokens, -q.
void add_engine_flags(CLI::App* cmd, EngineFlags& flags);
// Fills options.progress (and notice) with a stderr reporter unless --quiet; warnings always
// go to stderr.
void attach_progress(EngineFlags& flags);

}  // namespace vidi::app
