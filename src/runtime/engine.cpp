// The public Engine over the Pipeline.
#include <algorithm>
#include <filesystem>

#include "runtime/answer.h"
#include "runtime/pipeline.h"
#include "runtime/prompt.h"

namespace vidi {

namespace {

const runtime::EncodedVideo& encoded(const Video& v) {
    auto* e = dynamic_cast<const runtime::EncodedVideo*>(&v);
    VIDI_CHECK(e, "this video was not encoded by a vidi engine");
    return *e;
}

// The answer to a question from the generated ids.
Answer make_answer(const runtime::Pipeline& p, const runtime::GenerationResult& r, const runtime::EncodedVideo* v,
                   Task task) {
    Answer a;
    a.token_ids = r.ids;
    a.text = p.tokenizer().decode(r.ids, true);
    a.duration = v ? v->duration() : 0;
    if (task == Task::retrieval) a.ranges = runtime::parse_ranges(a.text, a.duration);
    a.timings.prefill_s = r.prefill_s;
    a.timings.prompt_tokens = r.prompt_tokens;
    a.timings.prefill_rows = r.prefill_rows;
    a.timings.generate_s = r.generate_s;
    a.timings.generated_tokens = static_cast<int>(r.ids.size());
    return a;
}

std::string prompt_text(const Question& q) {
    return q.task == Task::retrieval ? runtime::retrieval_question(q.text) : q.text;
}

class EngineBatch final : public Batch {
public:
    EngineBatch(runtime::Pipeline& p, const runtime::EncodedVideo* v) : pipeline_(p), video_(v), gen_(p.batch(v)) {}

    int add(const Question& q) override {
        const int row = gen_.add(pipeline_.prompt(prompt_text(q), video_ != nullptr), q.options.max_new_tokens);
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
            e.text = pipeline_.tokenizer().decode(r.ids, true);
            e.finished = s.finished;
            if (s.finished) {
                e.answer = make_answer(pipeline_, r, video_, task_of(s.row));
                gen_.drop(s.row);  // its text cache goes at once
                forget(s.row);
            }
            events.push_back(std::move(e));
        }
        if (gen_.rows() == 0 && !events.empty()) pipeline_.report_profile();
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

    runtime::Pipeline& pipeline_;
    const runtime::EncodedVideo* video_;
    runtime::BatchGeneration gen_;
    std::vector<std::pair<int, Task>> tasks_;
};

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
        return answer_one(&video, {query, Task::retrieval, opt});
    }

    Answer ask(const Video* video, const std::string& question, const GenerateOptions& opt) override {
        return answer_one(video, {question, Task::question, opt});
    }

    std::unique_ptr<Batch> batch(const Video* video) override {
        return std::make_unique<EngineBatch>(pipeline_, video ? &encoded(*video) : nullptr);
    }

    MemoryUse memory_use() const override {
        const auto m = pipeline_.device_memory();
        if (!m) return {};
        return {m->in_use + m->cached, m->limit ? m->limit : m->total};
    }

    void save_video(const Video& video, const std::string& path) override {
        pipeline_.save_tokens(encoded(video).tokens, path);
    }

    std::shared_ptr<const Video> load_video(const std::string& path) override {
        return pipeline_.encode(pipeline_.load_tokens(path));
    }

private:
    Answer answer_one(const Video* video, const Question& q) {
        const runtime::EncodedVideo* v = video ? &encoded(*video) : nullptr;
        const runtime::GenerationResult r =
            pipeline_.run(pipeline_.prompt(prompt_text(q), v != nullptr), v, q.options.max_new_tokens);
        return make_answer(pipeline_, r, v, q.task);
    }

    runtime::Pipeline pipeline_;
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
