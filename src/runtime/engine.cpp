// The public Engine over the loaded model.
#include <algorithm>
#include <filesystem>

#include "runtime/batch_generate.h"
#include "runtime/loaded_model.h"
#include "runtime/token_files.h"
#include "runtime/video_encoding.h"

namespace vidi {

namespace {

const runtime::EncodedVideo& encoded(const Video& v) {
    auto* e = dynamic_cast<const runtime::EncodedVideo*>(&v);
    VIDI_CHECK(e, "this video was not encoded by a vidi engine");
    return *e;
}

// The answer to a question from the generated ids (retrieval: the family's parsed ranges).
Answer make_answer(const runtime::LoadedModel& m, const runtime::GenerationResult& r, const runtime::EncodedVideo* v,
                   Task task) {
    Answer a;
    a.token_ids = r.ids;
    a.text = m.tokenizer().decode(r.ids, true);
    a.duration = v ? v->duration() : 0;
    if (task == Task::retrieval) a.ranges = m.family().parse_ranges(a.text, a.duration);
    a.timings.media_s = v ? v->take_media_seconds() : 0;
    a.timings.prefill_s = r.prefill_s;
    a.timings.prompt_tokens = r.prompt_tokens;
    a.timings.prefill_rows = r.prefill_rows;
    a.timings.generate_s = r.generate_s;
    a.timings.generated_tokens = static_cast<int>(r.ids.size());
    return a;
}

// The prompt's token ids: the family's retrieval question for a query (Vidi-7B's names the
// video's duration), else the question; with the media's place or text only.
std::vector<int32_t> prompt_ids(const runtime::LoadedModel& m, const Question& q, double duration, bool with_media) {
    const std::string text = q.task == Task::retrieval ? m.family().retrieval_question(q.text, duration) : q.text;
    return m.prompt(text, with_media);
}
std::vector<int32_t> prompt_ids(const runtime::LoadedModel& m, const Question& q, const runtime::EncodedVideo* v) {
    return prompt_ids(m, q, v ? v->duration() : 0, v != nullptr);
}

class EngineBatch final : public Batch {
public:
    EngineBatch(runtime::LoadedModel& m, const runtime::EncodedVideo* v) : model_(m), video_(v), gen_(m.batch(v)) {}

    int add(const Question& q) override {
        const int row = gen_.add(prompt_ids(model_, q, video_), q.options.max_new_tokens);
        tasks_.emplace_back(row, q.task);
        return row;
    }

    void cancel(int row) override {
        gen_.cancel(row);
        forget(row);
    }

    std::vector<BatchEvent> step() override {
        std::vector<BatchEvent> events;
        for (const auto& s : gen_.step()) {
            BatchEvent e;
            e.row = s.row;
            e.token = s.token;
            const runtime::GenerationResult& r = gen_.result(s.row);
            e.text = model_.tokenizer().decode(r.ids, true);
            e.finished = s.finished;
            if (s.finished) {
                e.answer = make_answer(model_, r, video_, task_of(s.row));
                gen_.drop(s.row);  // its text cache goes at once
                forget(s.row);
            }
            events.push_back(std::move(e));
        }
        if (gen_.rows() == 0 && !events.empty()) model_.report_profile();
        return events;
    }

    int rows() const override { return gen_.rows(); }

private:
    Task task_of(int row) const {
        for (const auto& [r, t] : tasks_)
            if (r == row) return t;
        return Task::question;
    }
    void forget(int row) {
        std::erase_if(tasks_, [&](const auto& rt) { return rt.first == row; });
    }

    runtime::LoadedModel& model_;
    const runtime::EncodedVideo* video_;
    runtime::BatchGeneration gen_;
    std::vector<std::pair<int, Task>> tasks_;
};

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

    void check_question(const Question& q, bool with_video) const override {
        // Duration 0: the duration changes a Vidi-7B retrieval question by a few characters only.
        const size_t tokens = prompt_ids(model_, q, 0, with_video).size();
        runtime::context_for(model_.decoder(), tokens, q.options.max_new_tokens);
    }

    std::shared_ptr<const Video> encode_video(const std::string& path) override {
        return runtime::encode_video(model_, path);
    }

    Answer retrieve(const Video& video, const std::string& query, const GenerateOptions& opt) override {
        return answer_one(&video, {query, Task::retrieval, opt});
    }

    Answer ask(const Video* video, const std::string& question, const GenerateOptions& opt) override {
        return answer_one(video, {question, Task::question, opt});
    }

    std::unique_ptr<Batch> batch(const Video* video) override {
        return std::make_unique<EngineBatch>(model_, video ? &encoded(*video) : nullptr);
    }

    MemoryUse memory_use() const override {
        const auto m = model_.device_memory();
        if (!m) return {};
        return {m->in_use + m->cached, m->limit ? m->limit : m->total};
    }

    void save_video(const Video& video, const std::string& path) override {
        runtime::save_tokens(model_, encoded(video).tokens, path);
    }

    std::shared_ptr<const Video> load_video(const std::string& path) override {
        return runtime::encode(model_, runtime::load_tokens(model_, path));
    }

private:
    Answer answer_one(const Video* video, const Question& q) {
        const runtime::EncodedVideo* v = video ? &encoded(*video) : nullptr;
        const runtime::GenerationResult r = model_.run(prompt_ids(model_, q, v), v, q.options.max_new_tokens);
        return make_answer(model_, r, v, q.task);
    }

    runtime::LoadedModel model_;
    EngineOptions options_;
};

}  // namespace

std::unique_ptr<Engine> Engine::open(const EngineOptions& options) { return std::make_unique<EngineImpl>(options); }

std::vector<Answer> Engine::answer(const Video* video, const std::vector<Question>& questions) {
    std::vector<Answer> answers(questions.size());
    if (questions.empty()) return answers;
    auto b = batch(video);
    std::vector<int> rows;
    for (const Question& q : questions) rows.push_back(b->add(q));
    while (b->rows() > 0)
        for (BatchEvent& e : b->step())
            if (e.finished)
                answers[static_cast<size_t>(std::find(rows.begin(), rows.end(), e.row) - rows.begin())] =
                    std::move(e.answer);
    return answers;
}

}  // namespace vidi
