// Many questions about one encoded video (issue 19), through the public API in one process
// (the video is encoded once): one question alone (Engine::retrieve), the same as a batch of one,
// N questions one by one, and the N questions as one batch (Engine::batch, every step timed).
// Prints the total times, the decoding step's wall time at batch 1 and N, and whether every
// batched answer has the token ids of its question alone. bench/gpu_batch.sh runs it on the GPU.
//
//   batch_bench --model DIR --video FILE [--backend cuda] [--questions 16] [--tokens 20] [--json OUT]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vidi/vidi.h"

using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

const std::vector<std::string> kQueries = {
    "a person laughing",     "the product close-up",   "the logo",
    "a car drives past",     "someone opens a door",    "a dog runs across the room",
    "people shaking hands",  "a close-up of a face",    "text on the screen",
    "a crowd applauds",      "someone pours a drink",   "the sun sets",
    "a child plays with a ball", "hands typing on a keyboard", "a phone rings",
    "the camera pans across a city"};

struct Run {
    std::vector<std::vector<int32_t>> ids;
    double seconds = 0;
    std::vector<double> step_s;  // wall time of each step that had every row
};

// The questions as one batch: every row added, then steps until all have finished.
Run as_batch(vidi::Engine& engine, const vidi::Video& video, const std::vector<vidi::Question>& qs) {
    Run r;
    r.ids.resize(qs.size());
    const auto t0 = Clock::now();
    auto batch = engine.batch(&video);
    std::vector<int> rows;
    for (const auto& q : qs) rows.push_back(batch->add(q));
    while (batch->rows() > 0) {
        const int before = batch->rows();
        const auto ts = Clock::now();
        auto events = batch->step();
        const double dt = since(ts);
        if (before == static_cast<int>(qs.size())) r.step_s.push_back(dt);
        for (auto& e : events)
            if (e.finished) r.ids[std::find(rows.begin(), rows.end(), e.row) - rows.begin()] = e.answer.token_ids;
    }
    r.seconds = since(t0);
    return r;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == "--" + name) return argv[i + 1];
    if (fallback.empty()) {
        std::fprintf(stderr, "batch_bench: missing --%s\n", name.c_str());
        std::exit(2);
    }
    return fallback;
}

}  // namespace

int main(int argc, char** argv) try {
    vidi::EngineOptions eo;
    eo.model_dir = arg(argc, argv, "model", "");
    eo.backend = arg(argc, argv, "backend", "auto");
    eo.notice = [](const std::string& line) { std::fprintf(stderr, "vidi: %s\n", line.c_str()); };
    const std::string video_path = arg(argc, argv, "video", "");
    const int n = std::clamp(std::stoi(arg(argc, argv, "questions", "16")), 1, static_cast<int>(kQueries.size()));
    const int tokens = std::stoi(arg(argc, argv, "tokens", "20"));
    const std::string json_out = arg(argc, argv, "json", "-");

    auto t0 = Clock::now();
    auto engine = vidi::Engine::open(eo);
    std::printf("loaded %s on %s in %.2f s\n", engine->model_name().c_str(), engine->backend_name().c_str(), since(t0));
    t0 = Clock::now();
    auto video = engine->encode_video(video_path);
    std::printf("encoded %s: %lld visual + %lld audio tokens in %.2f s\n", video_path.c_str(),
                static_cast<long long>(video->visual_tokens()), static_cast<long long>(video->audio_tokens()), since(t0));

    std::vector<vidi::Question> qs;
    for (int i = 0; i < n; ++i) qs.push_back({kQueries[i], vidi::Task::retrieval, {tokens}});
    vidi::GenerateOptions g{tokens};

    engine->retrieve(*video, qs[0].text, g);  // warm-up: the step's recording, the allocator
    t0 = Clock::now();
    const vidi::Answer one = engine->retrieve(*video, qs[0].text, g);
    const double one_s = since(t0);
    const double one_step = one.timings.generated_tokens > 1
                                ? one.timings.generate_s / (one.timings.generated_tokens - 1)
                                : 0;
    as_batch(*engine, *video, {qs[0]});  // warm-up of the batched step
    const Run one_batch = as_batch(*engine, *video, {qs[0]});

    std::vector<std::vector<int32_t>> alone;
    t0 = Clock::now();
    for (const auto& q : qs) alone.push_back(engine->retrieve(*video, q.text, g).token_ids);
    const double alone_s = since(t0);
    as_batch(*engine, *video, qs);  // warm-up at this batch size
    const Run batch = as_batch(*engine, *video, qs);

    int same = 0;
    for (int i = 0; i < n; ++i) same += batch.ids[i] == alone[i];
    const bool one_same = one_batch.ids[0] == one.token_ids;
    const double step1 = median(one_batch.step_s), stepn = median(batch.step_s);
    std::printf("one question alone:        %.3f s (prefill %.3f s, %d tokens, %.2f ms a step)\n", one_s,
                one.timings.prefill_s, one.timings.generated_tokens, 1e3 * one_step);
    std::printf("one question as a batch:   %.3f s (%.2f ms a step), ids %s\n", one_batch.seconds, 1e3 * step1,
                one_same ? "equal" : "DIFFERENT");
    std::printf("%d questions one by one:   %.3f s\n", n, alone_s);
    std::printf("%d questions as a batch:   %.3f s = %.2fx one question (%.2f ms a step = %.2fx the step at batch 1)\n",
                n, batch.seconds, batch.seconds / one_s, 1e3 * stepn, step1 > 0 ? stepn / step1 : 0.0);
    std::printf("batched ids equal to the questions alone: %d/%d\n", same, n);

    const json out = {{"questions", n},
                      {"tokens", tokens},
                      {"one_s", one_s},
                      {"one_prefill_s", one.timings.prefill_s},
                      {"one_step_ms", 1e3 * one_step},
                      {"batch1_s", one_batch.seconds},
                      {"batch1_step_ms", 1e3 * step1},
                      {"alone_total_s", alone_s},
                      {"batch_s", batch.seconds},
                      {"batch_step_ms", 1e3 * stepn},
                      {"batch_over_one", batch.seconds / one_s},
                      {"step_ratio", step1 > 0 ? stepn / step1 : 0.0},
                      {"ids_equal", same},
                      {"batch1_ids_equal", one_same}};
    if (json_out != "-") std::ofstream(json_out) << out.dump(2) << "\n";
    return same == n && one_same ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "batch_bench: error: %s\n", e.what());
    return 1;
}
