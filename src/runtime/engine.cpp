// The public Engine over the loaded model.
#include <filesystem>

#include "runtime/loaded_model.h"
#include "runtime/token_files.h"
#include "runtime/video_encoding.h"

namespace vidi {

namespace {

class EngineImpl final : public Engine {
public:
    explicit EngineImpl(const EngineOptions& options) : model_(options), options_(options) {}

    std::string model_name() const override {
        std::filesystem::path p = std::filesystem::absolute(options_.model_dir).lexically_normal();
        if (p.filename().empty()) p = p.parent_path();
        return p.filename().string();
    }
    std::string backend_name() const override {
        const QuantFormat& w = model_.weight_format();
        return model_.backend_name() + (w.quantized() ? ", weights " + w.name() : std::string());
    }
    std::string family_name() const override { return model_.family().name(); }
    std::string format_range(const TimeRange& r) const override { return model_.family().format_range(r); }
    int64_t media_token_bytes() const override {
        const model::ModelConfig& c = model_.config();
        return static_cast<int64_t>(sizeof(float) * static_cast<size_t>(c.llm.hidden) +
                                    model_.family().media_kv_bytes(c, 1, DType::f32, {}));
    }

    std::shared_ptr<const Video> encode_video(const std::string& path) override {
        return runtime::encode_video(model_, path);
    }

    Answer retrieve(const Video& video, const std::string& query, const GenerateOptions& opt) override {
        const model::Family& family = model_.family();
        Answer a = answer(&video, family.retrieval_question(query, video.duration()), opt);
        a.ranges = family.parse_ranges(a.text, a.duration);
        return a;
    }

    Answer ask(const Video* video, const std::string& question, const GenerateOptions& opt) override {
        return answer(video, question, opt);
    }

    void save_video(const Video& video, const std::string& path) override {
        runtime::save_tokens(model_, encoded(video).tokens, path);
    }

    std::shared_ptr<const Video> load_video(const std::string& path) override {
        return runtime::encode(model_, runtime::load_tokens(model_, path));
    }

private:
    static const runtime::EncodedVideo& encoded(const Video& v) {
        auto* e = dynamic_cast<const runtime::EncodedVideo*>(&v);
        VIDI_CHECK(e, "this video was not encoded by a vidi engine");
        return *e;
    }

    Answer answer(const Video* video, const std::string& text, const GenerateOptions& opt) {
        const runtime::EncodedVideo* v = video ? &encoded(*video) : nullptr;
        auto ids = model_.prompt(text, v != nullptr);
        runtime::GenerationResult r = model_.run(ids, v, opt.max_new_tokens);
        Answer a;
        a.token_ids = r.ids;
        a.text = model_.tokenizer().decode(r.ids, true);
        a.duration = v ? v->duration() : 0;
        a.timings.media_s = v ? v->take_media_seconds() : 0;
        a.timings.prefill_s = r.prefill_s;
        a.timings.generate_s = r.generate_s;
        a.timings.generated_tokens = static_cast<int>(r.ids.size());
        return a;
    }

    runtime::LoadedModel model_;
    EngineOptions options_;
};

}  // namespace

std::unique_ptr<Engine> Engine::open(const EngineOptions& options) { return std::make_unique<EngineImpl>(options); }

}  // namespace vidi
