// The public Engine over the Pipeline.
#include <filesystem>

#include "runtime/answer.h"
#include "runtime/pipeline.h"
#include "runtime/prompt.h"

namespace vidi {

namespace {

class EngineImpl final : public Engine {
public:
    explicit EngineImpl(const EngineOptions& options) : pipeline_(options), options_(options) {}

    std::string model_name() const override {
        std::filesystem::path p = std::filesystem::absolute(options_.model_dir).lexically_normal();
        if (p.filename().empty()) p = p.parent_path();
        return p.filename().string();
    }
    std::string backend_name() const override {
        const QuantFormat& w = pipeline_.weight_format();
        return pipeline_.backend_name() + (w.quantized() ? ", weights " + w.name() : std::string());
    }

    std::shared_ptr<const Video> encode_video(const std::string& path) override {
        return pipeline_.encode_video(path);
    }

    Answer retrieve(const Video& video, const std::string& query, const GenerateOptions& opt) override {
        Answer a = answer(&video, runtime::retrieval_question(query), opt);
        a.ranges = runtime::parse_ranges(a.text, a.duration);
        return a;
    }

    Answer ask(const Video* video, const std::string& question, const GenerateOptions& opt) override {
        return answer(video, question, opt);
    }

    void save_video(const Video& video, const std::string& path) override {
        pipeline_.save_tokens(encoded(video).tokens, path);
    }

    std::shared_ptr<const Video> load_video(const std::string& path) override {
        return pipeline_.encode(pipeline_.load_tokens(path));
    }

private:
    static const runtime::EncodedVideo& encoded(const Video& v) {
        auto* e = dynamic_cast<const runtime::EncodedVideo*>(&v);
        VIDI_CHECK(e, "this video was not encoded by a vidi engine");
        return *e;
    }

    Answer answer(const Video* video, const std::string& text, const GenerateOptions& opt) {
        const runtime::EncodedVideo* v = video ? &encoded(*video) : nullptr;
        auto ids = pipeline_.prompt(text, v != nullptr);
        runtime::GenerationResult r = pipeline_.run(ids, v, opt.max_new_tokens);
        Answer a;
        a.token_ids = r.ids;
        a.text = pipeline_.tokenizer().decode(r.ids, true);
        a.duration = v ? v->duration() : 0;
        a.timings.prefill_s = r.prefill_s;
        a.timings.generate_s = r.generate_s;
        a.timings.generated_tokens = static_cast<int>(r.ids.size());
        return a;
    }

    runtime::Pipeline pipeline_;
    EngineOptions options_;
};

}  // namespace

std::unique_ptr<Engine> Engine::open(const EngineOptions& options) { return std::make_unique<EngineImpl>(options); }

}  // namespace vidi
