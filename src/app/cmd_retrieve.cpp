// vidi retrieve: when does something happen in the video. Several --query flags reuse
// one encoding of the video (the media K/V), as a service would.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/engine_flags.h"
#include "app/json_text.h"
#include "vidi/clips.h"

namespace vidi::app {

namespace {

nlohmann::json answer_json(const std::string& query, const Answer& a) {
    nlohmann::json ranges = nlohmann::json::array();
    for (auto& r : a.ranges) ranges.push_back({{"start", r.start}, {"end", r.end}});
    return {{"query", query}, {"duration", a.duration}, {"ranges", ranges}, {"raw", a.text}};
}

void print_text(const Engine& engine, const Answer& a, bool label, const std::string& query) {
    if (label) std::printf("%s:\n", query.c_str());
    if (a.ranges.empty()) std::printf("no time range in the answer: %s\n", a.text.c_str());
    for (auto& r : a.ranges) std::printf("%s  (%.2f s - %.2f s)\n", engine.format_range(r).c_str(), r.start, r.end);
}

}  // namespace

Runner add_retrieve(CLI::App& app) {
    auto* cmd = app.add_subcommand("retrieve", "Find the time ranges where the query happens");
    auto flags = std::make_shared<EngineFlags>();
    auto video = std::make_shared<std::string>();
    auto queries = std::make_shared<std::vector<std::string>>();
    auto json = std::make_shared<bool>(false);
    auto clips = std::make_shared<std::string>();
    add_engine_flags(cmd, *flags);
    add_one_shot_flags(cmd, *flags);
    cmd->add_option("--video,-v", *video, "Video file")->required()->check(CLI::ExistingFile);
    cmd->add_option("--query", *queries, "What to look for, e.g. \"slicing onion\" (repeat to ask several)")
        ->required();
    cmd->add_flag("--json", *json, "Print JSON (an array when several queries are given)");
    cmd->add_option("--export-clips", *clips, "Write each range as its own file (stream copy) into DIR");
    return [=]() {
        attach_progress(*flags);
        auto engine = Engine::open(flags->options);
        std::vector<Question> questions;
        for (const std::string& q : *queries) questions.push_back({q, Task::retrieval, flags->generate});
        for (const Question& q : questions) engine->check_question(q, true);  // before the encode
        if (!clips->empty()) prepare_clip_dir(*clips);                         // the same
        auto v = engine->encode_video(*video);
        if (!flags->quiet)
            std::fprintf(stderr, "encoded %s: %lld frames, %lld visual + %lld audio tokens in %.2f s\n",
                         video->c_str(), static_cast<long long>(v->frames()),
                         static_cast<long long>(v->visual_tokens()), static_cast<long long>(v->audio_tokens()),
                         v->encode_seconds());
        const std::vector<Answer> answers = engine->answer(v.get(), questions);
        nlohmann::json all = nlohmann::json::array();
        for (size_t i = 0; i < answers.size(); ++i) {
            const std::string& q = (*queries)[i];
            const Answer& a = answers[i];
            if (!flags->quiet)
                std::fprintf(stderr, "query \"%s\": prefill %.3f s, %d tokens in %.3f s\n", q.c_str(),
                             a.timings.prefill_s, a.timings.generated_tokens, a.timings.generate_s);
            if (*json) all.push_back(answer_json(q, a));
            else print_text(*engine, a, queries->size() > 1, q);
        }
        if (*json) std::cout << json_text(all.size() == 1 ? all[0] : all, 2) << "\n";
        std::fflush(stdout);  // the answers stand even if a clip fails below
        if (!clips->empty())
            for (const Answer& a : answers)
                for (const std::string& path : export_clips(*video, a.ranges, *clips))
                    std::fprintf(stderr, "clip: %s\n", path.c_str());
        return 0;
    };
}

}  // namespace vidi::app
