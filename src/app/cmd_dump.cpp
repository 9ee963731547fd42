// vidi dump: writes the intermediate tensors under the golden files' names, so that
// correctness can be checked from the outside (see ../shared/golden/README.md).
#include <cstdio>
#include <sstream>

#include "app/commands.h"
#include "app/engine_flags.h"
#include "vidi/tools.h"

namespace vidi::app {

namespace {

std::vector<int64_t> parse_list(const std::string& s, const char* what) {
    std::vector<int64_t> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty()) continue;
        try {
            size_t used = 0;
            out.push_back(std::stoll(item, &used));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::logic_error&) {
            fail(what, ": '", item, "' is not an integer");
        }
    }
    return out;
}

}  // namespace

Runner add_dump(CLI::App& app) {
    auto* cmd = app.add_subcommand("dump", "Write intermediate tensors (golden names) to a safetensors file");
    auto flags = std::make_shared<EngineFlags>();
    auto video = std::make_shared<std::string>();
    auto query = std::make_shared<std::string>();
    auto question = std::make_shared<std::string>();
    auto frames = std::make_shared<std::string>("0");
    auto forced = std::make_shared<std::string>();
    auto out_path = std::make_shared<std::string>();
    add_engine_flags(cmd, *flags);
    add_one_shot_flags(cmd, *flags);
    flags->generate.max_new_tokens = 16;
    cmd->add_option("--video,-v", *video, "Video file (omit for the text_* tensors of a text-only turn)")
        ->check(CLI::ExistingFile);
    auto* q = cmd->add_option("--query", *query, "Retrieval query");
    auto* qq = cmd->add_option("--question", *question, "Free-form question");
    q->excludes(qq);
    cmd->add_option("--frames", *frames, "Sampled frames whose pixel values to write, e.g. 0,11")
        ->capture_default_str();
    cmd->add_option("--forced-ids", *forced, "Token ids to append with teacher forcing, e.g. 5,6,7");
    cmd->add_option("--out,-o", *out_path, "Output .safetensors file")->required();
    return [=]() {
        attach_progress(*flags);
        DumpRequest req;
        req.video = *video;
        req.query = *query;
        req.question = *question;
        req.frames = parse_list(*frames, "--frames");
        req.forced_ids = parse_list(*forced, "--forced-ids");
        req.max_new_tokens = flags->generate.max_new_tokens;
        req.out = *out_path;
        const size_t n = dump_tensors(flags->options, req);
        if (!flags->quiet) std::fprintf(stderr, "wrote %zu tensors to %s\n", n, out_path->c_str());
        return 0;
    };
}

}  // namespace vidi::app
