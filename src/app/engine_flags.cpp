#include "app/engine_flags.h"

#include <unistd.h>

#include <chrono>
#include <limits>
#include <cstdio>

namespace vidi::app {

CLI::Validator integer_in(long long min, long long max, const std::string& meaning) {
    // A bound past any sensible value (the type's own) is named only to a value beyond it.
    const bool open_ended = max == std::numeric_limits<int>::max() || max == std::numeric_limits<long long>::max();
    const std::string lower = "an integer of at least " + std::to_string(min),
                      range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return CLI::Validator(
        [=](std::string& in) -> std::string {
            size_t used = 0;
            long long v = 0;
            try {
                v = std::stoll(in, &used);
            } catch (const std::logic_error&) {
                used = 0;
            }
            if (used == 0 || used != in.size() || v < min || v > max)
                return "'" + in + "' is not " + meaning + " (" +
                       (!open_ended ? range : used && v > max ? lower + ", at most " + std::to_string(max) : lower) +
                       ")";
            return {};
        },
        open_ended ? "INT>=" + std::to_string(min) : "INT in [" + std::to_string(min) + " - " + std::to_string(max) + "]");
}

void add_engine_flags(CLI::App* cmd, EngineFlags& f) {
    cmd->add_option("--model,-m", f.options.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
    cmd->add_option("--backend", f.options.backend, "cpu, cuda, cuda:N or auto")->capture_default_str();
    cmd->add_option("--dtype", f.options.dtype,
                    "GPU compute dtype: fp16 as the official inference (default), or bf16 (the CPU computes in f32)")
        ->check(CLI::IsMember({"bf16", "fp16"}))
        ->capture_default_str();
    cmd->add_option("--compute", f.options.compute,
                    "The encode's matrix products: 16bit (in --dtype, default) or fp8 (E4M3 on GPUs of compute "
                    "capability 8.9+ for the media tokens' layers and the towers' normed linears; less accurate; "
                    "prompts and decoding stay 16-bit)")
        ->check(CLI::IsMember({"16bit", "fp8"}))
        ->capture_default_str();
    cmd->add_option("--threads", f.options.threads, "CPU threads (0: all cores)")
        ->check(integer_in(0, std::numeric_limits<int>::max(), "a thread count"))
        ->capture_default_str();
    cmd->add_option("--frame-batch", f.options.frame_batch, "Frames per vision-tower batch")
        ->check(integer_in(1, std::numeric_limits<int>::max(), "a frame count"))
        ->capture_default_str();
    cmd->add_option("--decode-lanes", f.options.decode_lanes,
                    "Video decoders at once, each on its own stretch of the file (0: three of every four cores; with NVDEC one per 2 cores, at most 4)")
        ->check(CLI::Range(0, 64))
        ->capture_default_str();
    cmd->add_option("--decoder", f.options.decoder,
                    "Video decoding: auto (NVDEC on the CUDA backend where it can take the file and its memory "
                    "costs the video nothing, else the CPU), cpu or nvdec")
        ->check(CLI::IsMember({"auto", "cpu", "nvdec"}))
        ->capture_default_str();
    cmd->add_option("--max-new-tokens", f.generate.max_new_tokens, "Generation limit (at least 1)")
        ->check(integer_in(1, std::numeric_limits<int>::max(), "a token limit"))
        ->capture_default_str();
    cmd->add_option_function<std::string>(
        "--gpu-memory",
        [&f](const std::string& text) {
            try {
                f.options.gpu_memory_limit = parse_bytes(text);
            } catch (const Error& e) {
                throw CLI::ValidationError("--gpu-memory", e.what());
            }
        },
        "Most GPU memory the engine may take, e.g. 19GiB (refuses early when a request needs more)");
    cmd->add_option("--weights", f.options.weights,
                    "Linear weights on the device: auto, bf16, int8, int4 (int4/g128: groups of 128)")
        ->capture_default_str();
    cmd->add_option("--media-kv", f.options.media_kv, "Media K/V per video: auto, bf16, int8 or int4")
        ->check(CLI::IsMember({"auto", "bf16", "int8", "int4"}))
        ->capture_default_str();
    cmd->add_option("--media-tokens", f.options.media_tokens,
                    "Where a video's media tokens stay once encoded: auto (the GPU unless it is short), device, host")
        ->check(CLI::IsMember({"auto", "device", "host"}))
        ->capture_default_str();
    cmd->add_option("--visual-tokens", f.options.visual_token_budget,
                    "Visual-token budget per video (0: the model family's default, Vidi1.5's 60000; lowered only when GPU memory is short)")
        ->check(integer_in(0, std::numeric_limits<int64_t>::max(), "a token budget"))
        ->capture_default_str();
    cmd->add_flag("--quiet,-q", f.quiet, "No progress on stderr");
    // Warnings print even with -q.
    f.options.warning = [](const std::string& line) { std::fprintf(stderr, "vidi: warning: %s\n", line.c_str()); };
}

void add_one_shot_flags(CLI::App* cmd, EngineFlags& f) {
    f.options.warm_up = false;
    cmd->add_flag("--warm-up", f.options.warm_up,
                  "Warm the GPU up at load as vidi serve does (the encode then times a server's first request)");
}

void attach_progress(EngineFlags& f) {
    if (f.quiet) return;
    f.options.notice = [](const std::string& line) { std::fprintf(stderr, "vidi: %s\n", line.c_str()); };
    const bool tty = isatty(STDERR_FILENO);
    auto start = std::chrono::steady_clock::now();
    f.options.progress = [tty, start, last = std::string()](const std::string& stage, int64_t done,
                                                            int64_t total) mutable {
        // "tokens" (visual tokens through the decoder) interleaves with "frames" while a video
        // is decoded; the frames line says enough on a terminal (vidi serve streams both).
        if (stage == "tokens") return;
        double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        bool finished = total > 0 && done >= total;
        // On a terminal one line per stage is rewritten; in a log only stage ends are printed.
        if (!tty && !finished && stage == last) return;
        if (tty && stage != last && !last.empty()) std::fputc('\n', stderr);
        last = stage;
        if (total > 0)
            std::fprintf(stderr, "%s[%7.1fs] %-9s %lld/%lld%s", tty ? "\r" : "", t, stage.c_str(),
                         static_cast<long long>(done), static_cast<long long>(total), tty ? "" : "\n");
        else
            std::fprintf(stderr, "%s[%7.1fs] %-9s %lld%s", tty ? "\r" : "", t, stage.c_str(),
                         static_cast<long long>(done), tty ? "" : "\n");
        if (tty && finished) {
            std::fputc('\n', stderr);
            last.clear();
        }
        std::fflush(stderr);
    };
}

}  // namespace vidi::app
