// vidi dump: writes the intermediate tensors under the golden files' names, so that
// correctness can be checked from the outside (see ../shared/golden/README.md).
#include <cstdio>
#include <sstream>

#include "app/commands.h"
#include "app/engine_flags.h"
#include "io/safetensors.h"
#include "runtime/pipeline.h"
#include "runtime/prompt.h"

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

Tensor ids_tensor(const std::vector<int32_t>& ids) {
    return Tensor::from_vector(std::vector<int64_t>(ids.begin(), ids.end()));
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
        VIDI_CHECK(!query->empty() || !question->empty(), "dump needs --query or --question");
        attach_progress(*flags);
        runtime::Pipeline pipe(flags->options);
        Backend& be = pipe.backend();
        std::vector<std::pair<std::string, Tensor>> out;
        std::shared_ptr<runtime::EncodedVideo> enc;
        std::string prefix;
        if (!video->empty()) {
            runtime::MediaCapture cap;
            for (int64_t f : parse_list(*frames, "--frames")) cap.frames.insert(f);
            runtime::MediaTokens tokens = pipe.media_tokens(*video, &cap);
            for (int64_t f : cap.frames) {
                auto it = cap.pixels.find(f);
                if (it == cap.pixels.end())
                    fail("--frames: sampled frame ", f, " does not exist (the video has ", tokens.frames, ")");
                out.emplace_back("pixel_values_frame" + std::to_string(f), it->second);
            }
            if (cap.mel.defined()) {
                out.emplace_back("mel", cap.mel);
                out.emplace_back("mel_frames", Tensor::from_vector(std::vector<int64_t>{cap.mel_frames}));
            }
            out.emplace_back("image_tokens", be.to_host(tokens.image));
            out.emplace_back("image_token_grid",
                             Tensor::from_vector(std::vector<int64_t>{tokens.frames, tokens.grid_h, tokens.grid_w}));
            if (tokens.audio.defined()) out.emplace_back("audio_tokens", be.to_host(tokens.audio));
            enc = pipe.encode(std::move(tokens));
        } else {
            prefix = "text_";
        }
        std::string text = question->empty() ? runtime::retrieval_question(*query) : *question;
        auto prompt = pipe.prompt(text, enc != nullptr);
        auto result = pipe.run(prompt, enc.get(), flags->generate.max_new_tokens, true);
        out.emplace_back(prefix + "prompt_ids", ids_tensor(prompt));
        out.emplace_back(prefix + "prompt_logits", result.prompt_logits);
        out.emplace_back(prefix + "generated_ids", ids_tensor(result.ids));
        out.emplace_back(prefix + "generated_margins", Tensor::from_vector(result.margins));
        if (!forced->empty()) {
            std::vector<int32_t> ids;
            for (int64_t v : parse_list(*forced, "--forced-ids")) {
                VIDI_CHECK(v >= 0 && v < pipe.config().llm.vocab, "--forced-ids: ", v, " is outside the vocabulary");
                ids.push_back(static_cast<int32_t>(v));
            }
            out.emplace_back(prefix + "forced_ids", ids_tensor(ids));
            out.emplace_back(prefix + "forced_logits",
                             runtime::forced_logits(pipe.decoder(), prompt, enc ? enc->media()
                                                                                : std::vector<const model::MediaKV*>{},
                                                    ids));
        }
        io::save_safetensors(*out_path, out);
        if (!flags->quiet) std::fprintf(stderr, "wrote %zu tensors to %s\n", out.size(), out_path->c_str());
        return 0;
    };
}

}  // namespace vidi::app
