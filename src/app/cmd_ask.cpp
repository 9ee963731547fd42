// vidi ask: a free-form question about a video, or a text-only chat turn.
#include <cstdio>

#include "app/commands.h"
#include "app/engine_flags.h"

namespace vidi::app {

Runner add_ask(CLI::App& app) {
    auto* cmd = app.add_subcommand("ask", "Ask a free-form question about a video (or text only without --video)");
    auto flags = std::make_shared<EngineFlags>();
    auto video = std::make_shared<std::string>();
    auto question = std::make_shared<std::string>();
    add_engine_flags(cmd, *flags);
    add_one_shot_flags(cmd, *flags);
    cmd->add_option("--video,-v", *video, "Video file (omit for a text-only turn)")->check(CLI::ExistingFile);
    cmd->add_option("--question", *question, "The question")->required();
    return [=]() {
        attach_progress(*flags);
        auto engine = Engine::open(flags->options);
        std::shared_ptr<const Video> v;
        engine->check_question({*question, Task::question, flags->generate}, !video->empty());  // before the encode
        if (!video->empty()) v = engine->encode_video(*video);
        Answer a = engine->ask(v.get(), *question, flags->generate);
        std::printf("%s\n", a.text.c_str());
        return 0;
    };
}

}  // namespace vidi::app
