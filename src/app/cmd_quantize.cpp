// `vidi quantize --model DIR --out DIR [--weights int4|int8|int4/g128]`: writes a quantised
// copy of a bf16 checkpoint that `vidi` loads directly (progress on stderr).
#include <chrono>
#include <cstdio>

#include "app/byte_progress.h"
#include "app/commands.h"
#include "vidi/tools.h"

namespace vidi::app {

namespace {

struct QuantizeArgs {
    std::string model, out, format = "int4";
    bool quiet = false;
};

int run_quantize(const QuantizeArgs& a) {
    QuantizeOptions opt;
    opt.model_dir = a.model;
    opt.out_dir = a.out;
    opt.weights = a.format;
    const auto t0 = std::chrono::steady_clock::now();
    ByteProgress progress("quantize", "read", 256u << 20);
    if (!a.quiet) opt.progress = [&](uint64_t done, uint64_t total) { progress(done, total); };
    const QuantizeSummary s = quantize_checkpoint(opt);
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%squantize: %d tensors as %s, %d copied, %.3f GB -> %.3f GB in %d shard(s), %.1f s -> %s\n",
                 a.quiet ? "" : "\n", s.quantized, s.format.c_str(), s.copied, s.bytes_in / 1e9,
                 s.bytes_out / 1e9, s.shards, t, a.out.c_str());
    return 0;
}

}  // namespace

Runner add_quantize(CLI::App& app) {
    auto* cmd = app.add_subcommand("quantize", "Write an int8/int4 copy of a bf16 checkpoint");
    auto a = std::make_shared<QuantizeArgs>();
    cmd->add_option("--model,-m", a->model, "bf16 checkpoint directory")->required()->check(CLI::ExistingDirectory);
    cmd->add_option("--out", a->out, "output directory (must be new or empty)")->required();
    cmd->add_option("--weights", a->format, "int8 (per output channel), int4 (groups of 64), int4/g128, int8/g64")
        ->capture_default_str();
    cmd->add_flag("--quiet,-q", a->quiet, "No progress on stderr");
    return [a]() -> int { return run_quantize(*a); };
}

}  // namespace vidi::app
