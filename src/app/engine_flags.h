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

// Validates an integer flag in [min, max]; the message says what it means ("'0' is not a
// size in MiB (an integer from 1 to 1099511627776)"; a bound that is the type's own is named
// only to a value past it), where CLI11's number checks print ranges of doubles.
CLI::Validator integer_in(long long min, long long max, const std::string& meaning);

// --model, --backend, --dtype, --threads, --frame-batch, --decode-lanes, --decoder, --max-new-tokens,
// --gpu-memory, --weights, --media-kv, --visual-tokens, -q.
void add_engine_flags(CLI::App* cmd, EngineFlags& flags);
// --warm-up of the commands that answer one video and exit (retrieve, ask, dump). They skip
// the warm-up at load by default: one process, one video, it would only add to the wall time.
// With the flag the encode times what a server's first request after its load sees. Sets
// options.warm_up to false before parsing; the flag turns it back on.
void add_one_shot_flags(CLI::App* cmd, EngineFlags& flags);
// Fills options.progress (and notice) with a stderr reporter unless --quiet; warnings always
// go to stderr.
void attach_progress(EngineFlags& flags);

}  // namespace vidi::app
