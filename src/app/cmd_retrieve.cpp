// vidi retrieve: when does something happen in the video.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/engine_flags.h"

namespace vidi::app {

Runner add_retrieve(CLI::App& app) {
    auto* cmd = app.add_subcommand("retrieve", "Find the time ranges where the query happens");
    auto flags = std::make_shared<EngineFlags>();
    auto video = std::make_shared<std::string>();
    auto query = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    add_engine_flags(cmd, *flags);
    cmd->add_option("--video,-v", *video, "Video file")->required()->check(CLI::ExistingFile);
    cmd->add_option("--query", *query, "What to look for, e.g. \"slicing onion\"")->required();
    cmd->add_flag("--json", *json, "Print JSON");
    return [=]() {
        attach_progress(*flags);
        auto engine = Engine::open(flags->options);
        auto v = engine->encode_video(*video);
        Answer a = engine->retrieve(*v, *query, flags->generate);
        if (*json) {
            nlohmann::json ranges = nlohmann::json::array();
            for (auto& r : a.ranges) ranges.push_back({{"start", r.start}, {"end", r.end}});
            nlohmann::json out{{"query", *query}, {"duration", a.duration}, {"ranges", ranges}, {"raw", a.text}};
            std::cout << out.dump(2) << "\n";
        } else {
            if (a.ranges.empty()) std::printf("no time range in the answer: %s\n", a.text.c_str());
            for (auto& r : a.ranges)
                std::printf("%s  (%.2f s - %.2f s)\n", format_range(r).c_str(), r.start, r.end);
        }
        return 0;
    };
}

}  // namespace vidi::app
