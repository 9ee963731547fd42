// `vidi make-checkpoint (--config FILE | --preset NAME) --out DIR --seed N`: a random-weight
// checkpoint in its family's official layout, streamed to disk (progress on stderr).
#include <charconv>
#include <chrono>
#include <cstdio>

#include "app/byte_progress.h"
#include "app/commands.h"
#include "vidi/tools.h"

namespace vidi::app {

namespace {

int run_make_checkpoint(MakeCheckpointOptions opt) {
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    ByteProgress progress("make-checkpoint", "written", 256u << 20);
    opt.progress = [&](uint64_t done, uint64_t total) { progress(done, total); };
    const MakeCheckpointSummary s = make_checkpoint(opt);
    const double t = seconds();
    std::fprintf(stderr, "\nmake-checkpoint: %d tensors, %d shard(s), %.3f GB in %.2f s (%.0f MB/s) -> %s\n",
                 s.tensors, s.shards, s.bytes / 1e9, t, t > 0 ? s.bytes / 1e6 / t : 0.0, opt.out_dir.c_str());
    return 0;
}

// A seed is a decimal in [0, 2^64): CLI11 saturates out-of-range values and wraps negative
// ones, which would give several "seeds" the same weights.
CLI::Validator seed_check() {
    return CLI::Validator(
        [](std::string& in) -> std::string {
            uint64_t v = 0;
            const auto [end, ec] = std::from_chars(in.data(), in.data() + in.size(), v);
            if (in.empty() || ec != std::errc() || end != in.data() + in.size())
                return "'" + in + "' is not a seed (a whole number from 0 to 18446744073709551615)";
            return {};
        },
        "UINT64");
}

}  // namespace

Runner add_make_checkpoint(CLI::App& app) {
    auto* cmd = app.add_subcommand("make-checkpoint", "Write a random-weight checkpoint in the official layout");
    auto a = std::make_shared<MakeCheckpointOptions>();
    auto* config = cmd->add_option("--config", a->config_file, "config.json to build (tower dirs beside it are copied)")
                       ->check(CLI::ExistingFile);
    std::string presets;
    for (const std::string& p : checkpoint_presets()) presets += (presets.empty() ? "" : ", ") + p;
    auto* preset = cmd->add_option("--preset", a->preset, "built-in config: " + presets);
    config->excludes(preset);
    cmd->add_option("--out", a->out_dir, "output directory (must be new or empty)")->required();
    cmd->add_option("--seed", a->seed, "random seed")->required()->check(seed_check());
    cmd->add_option("--shard-size", a->shard_bytes, "maximum bytes per shard (default 5e9)")
        ->check(CLI::PositiveNumber);  // -1 read as an unsigned wrapped to 2^64 - 1
    cmd->add_option("--tokenizer", a->tokenizer_model, "tokenizer.model to copy (default: the family builds one)")
        ->check(CLI::ExistingFile);
    return [a]() -> int { return run_make_checkpoint(*a); };
}

}  // namespace vidi::app
