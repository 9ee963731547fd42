// `vidi make-checkpoint (--config FILE | --preset vidi1.5-9b) --out DIR --seed N`:
// a random-weight checkpoint in the official layout, streamed to disk (progress on stderr).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "app/commands.h"
#include "io/checkpoint_writer.h"
#include "io/json_file.h"
#include "vidi/error.h"

namespace vidi::app {

namespace {

struct MakeCheckpointArgs {
    std::string config_file, preset, out, tokenizer;
    uint64_t seed = 0;
    uint64_t shard_bytes = 5'000'000'000;
};

int run_make_checkpoint(const MakeCheckpointArgs& a) {
    nlohmann::json config;
    std::string config_dir = ".";
    if (!a.preset.empty()) {
        if (a.preset != "vidi1.5-9b") fail("unknown preset \"", a.preset, "\" (known: vidi1.5-9b)");
        config = io::vidi15_9b_config();
    } else {
        config = io::read_json_file(a.config_file);
        config_dir = std::filesystem::path(a.config_file).parent_path().string();
        if (config_dir.empty()) config_dir = ".";
    }
    io::RandomCheckpointOptions opt;
    opt.out_dir = a.out;
    opt.seed = a.seed;
    opt.shard_bytes = a.shard_bytes;
    opt.tokenizer_model = a.tokenizer;
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    uint64_t last_report = 0;
    opt.progress = [&](uint64_t done, uint64_t total) {
        if (done - last_report < (256u << 20) && done != total) return;  // every 256 MB
        last_report = done;
        const bool big = total >= 1'000'000'000;
        std::fprintf(stderr, "\rmake-checkpoint: %.2f / %.2f %s written (%.0f%%)", done / (big ? 1e9 : 1e6),
                     total / (big ? 1e9 : 1e6), big ? "GB" : "MB", total ? 100.0 * done / total : 100.0);
        std::fflush(stderr);
    };
    const io::RandomCheckpointSummary s = io::write_random_checkpoint(config, config_dir, opt);
    const double t = seconds();
    std::fprintf(stderr, "\nmake-checkpoint: %d tensors, %d shard(s), %.3f GB in %.2f s (%.0f MB/s) -> %s\n",
                 s.tensors, s.shards, s.bytes / 1e9, t, t > 0 ? s.bytes / 1e6 / t : 0.0, a.out.c_str());
    return 0;
}

}  // namespace

Runner add_make_checkpoint(CLI::App& app) {
    auto* cmd = app.add_subcommand("make-checkpoint", "Write a random-weight checkpoint in the official layout");
    auto a = std::make_shared<MakeCheckpointArgs>();
    auto* config = cmd->add_option("--config", a->config_file, "config.json to build (tower dirs beside it are copied)")
                       ->check(CLI::ExistingFile);
    auto* preset = cmd->add_option("--preset", a->preset, "built-in config: vidi1.5-9b");
    config->excludes(preset);
    cmd->add_option("--out", a->out, "output directory (must be new or empty)")->required();
    cmd->add_option("--seed", a->seed, "random seed")->required();
    cmd->add_option("--shard-size", a->shard_bytes, "maximum bytes per shard (default 5e9)");
    cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.model to copy (default: build a Gemma-style one)")
        ->check(CLI::ExistingFile);
    return [a]() -> int {
        if (a->config_file.empty() == a->preset.empty()) fail("make-checkpoint: give exactly one of --config or --preset");
        return run_make_checkpoint(*a);
    };
}

}  // namespace vidi::app
