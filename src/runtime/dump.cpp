// `vidi dump` (vidi/tools.h): a request's intermediate tensors under the golden files'
// names (see ../shared/golden/README.md), so that correctness can be checked from outside.
#include <filesystem>

#include "io/files.h"
#include "io/safetensors.h"
#include "runtime/loaded_model.h"
#include "runtime/video_encoding.h"
#include "vidi/tools.h"

namespace vidi {

namespace fs = std::filesystem;

namespace {

Tensor ids_tensor(const std::vector<int32_t>& ids) {
    return Tensor::from_vector(std::vector<int64_t>(ids.begin(), ids.end()));
}

}  // namespace

size_t dump_tensors(const EngineOptions& options, const DumpRequest& req) {
    VIDI_CHECK(!req.query.empty() || !req.question.empty(), "dump needs --query or --question");
    VIDI_CHECK(!req.out.empty(), "dump: --out names no file (an empty name)");
    // Never beside the checkpoint's own files: "-o DIR/model-00002-of-00002.safetensors" replaced a shard.
    // A symlink at the output needs no check of its own: the file is renamed over it (io::ReplacingFile),
    // which replaces the link and leaves its target alone.
    std::error_code out_ec, model_ec;
    const fs::path out_dir = fs::weakly_canonical(fs::absolute(req.out).parent_path(), out_ec);
    const fs::path model_dir = fs::weakly_canonical(options.model_dir, model_ec);
    VIDI_CHECK(out_ec || model_ec || out_dir != model_dir, req.out,
               ": the output would go into the checkpoint's directory ", options.model_dir, "; write it elsewhere");
    { io::ReplacingFile probe(req.out); }  // an output that cannot be written fails now, not after the run
    runtime::LoadedModel m(options);
    Backend& be = m.backend();
    std::vector<std::pair<std::string, Tensor>> out;
    std::shared_ptr<runtime::EncodedVideo> enc;
    std::string prefix;
    if (!req.video.empty()) {
        runtime::MediaCapture cap;
        cap.frames.insert(req.frames.begin(), req.frames.end());
        runtime::MediaTokens tokens = runtime::media_tokens(m, req.video, &cap);
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
        enc = runtime::encode(m, std::move(tokens));
    } else {
        prefix = "text_";
    }
    const std::string text =
        req.question.empty() ? m.family().retrieval_question(req.query, enc ? enc->duration() : 0) : req.question;
    auto prompt = m.prompt(text, enc != nullptr);
    auto result = m.run(prompt, enc.get(), req.max_new_tokens, true);
    out.emplace_back(prefix + "prompt_ids", ids_tensor(prompt));
    out.emplace_back(prefix + "prompt_logits", result.prompt_logits);
    out.emplace_back(prefix + "generated_ids", ids_tensor(result.ids));
    out.emplace_back(prefix + "generated_margins", Tensor::from_vector(result.margins));
    if (!req.forced_ids.empty()) {
        std::vector<int32_t> ids;
        for (int64_t v : req.forced_ids) {
            VIDI_CHECK(v >= 0 && v < m.decoder().vocab(), "--forced-ids: ", v, " is outside the vocabulary");
            ids.push_back(static_cast<int32_t>(v));
        }
        out.emplace_back(prefix + "forced_ids", ids_tensor(ids));
        out.emplace_back(prefix + "forced_logits",
                         runtime::forced_logits(m.decoder(), prompt,
                                                enc ? enc->media() : std::vector<const model::MediaKV*>{}, ids));
    }
    io::save_safetensors(req.out, out);
    return out.size();
}

}  // namespace vidi
