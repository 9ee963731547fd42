#include "app/serve_fake_engine.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace vidi::test {
namespace {

std::string head_of(const std::string& path, size_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string s(n, '\0');
    in.read(s.data(), static_cast<std::streamsize>(n));
    s.resize(static_cast<size_t>(in.gcount()));
    return s;
}

// Counts overlapping calls, so tests can assert the server never runs two at once.
struct InFlight {
    FakeEngine& e;
    explicit InFlight(FakeEngine& engine) : e(engine) {
        int now = ++e.in_flight;
        int seen = e.max_in_flight.load();
        while (now > seen && !e.max_in_flight.compare_exchange_weak(seen, now)) {
        }
    }
    ~InFlight() { --e.in_flight; }
};

}  // namespace

void FakeEngine::work(std::chrono::milliseconds total, const char* stage) {
    for (auto spent = std::chrono::milliseconds(0); spent < total; spent += std::chrono::milliseconds(10)) {
        if (progress) progress(stage, spent.count(), total.count());
        std::this_thread::sleep_for(std::min(std::chrono::milliseconds(10), total - spent));
    }
}

void FakeEngine::check_question(const Question& q, bool /*with_video*/) const {
    if (q.text.size() > 1000) fail("the prompt has ", q.text.size(), " tokens but the model's context holds 1000");
}

std::shared_ptr<const Video> FakeEngine::encode_video(const std::string& path) {
    InFlight guard(*this);
    const std::string head = head_of(path, 64);
    double duration = 0;
    if (head.rfind("FAKEVIDEO ", 0) == 0) duration = std::stod(head.substr(10));
    else if (head.size() >= 8 && head.compare(4, 4, "ftyp") == 0) duration = 12;
    else if (head.rfind("FAKEOOM", 0) == 0)  // the CUDA pool's wording (backend/cuda/device_pool.cpp)
        fail("cuda:0: out of GPU memory allocating 2147483648 bytes (2.00 GiB) for media K/V");
    else fail("cannot decode ", path, ": not a video");
    work(encode_time, "frames");
    ++encodes;
    return std::make_shared<FakeVideo>(duration);
}

TimeRange FakeEngine::expected_range(const std::string& query, double duration) {
    double start = static_cast<double>(query.size() % 7);
    return {std::min(start, duration), std::min(start + 1.5, duration)};
}

Answer FakeEngine::fake_answer(const Video* video, const Question& q, std::vector<std::string>* tokens) {
    Answer a;
    a.duration = video ? video->duration() : 0;
    std::string text = q.task == Task::retrieval ? "fake ranges for " + q.text : "you asked: " + q.text;
    std::vector<std::string> words;
    for (size_t at = 0; at < text.size();) {
        size_t end = text.find(' ', at);
        end = end == std::string::npos ? text.size() : end + 1;
        words.push_back(text.substr(at, end - at));
        at = end;
    }
    if (static_cast<int>(words.size()) > q.options.max_new_tokens) words.resize(q.options.max_new_tokens);
    a.text.clear();
    for (const auto& w : words) a.text += w;
    if (q.task == Task::retrieval) a.ranges = {expected_range(q.text, a.duration)};
    a.timings.generated_tokens = static_cast<int>(words.size());
    for (size_t i = 0; i < words.size(); ++i) a.token_ids.push_back(static_cast<int32_t>(1000 + i));
    if (tokens) *tokens = std::move(words);
    return a;
}

Answer FakeEngine::retrieve(const Video& video, const std::string& query, const GenerateOptions& opt) {
    InFlight guard(*this);
    last_max_new_tokens = opt.max_new_tokens;
    work(work_time);
    ++answers;
    Answer a = fake_answer(&video, {query, Task::retrieval, opt});
    a.timings.generate_s = work_time.count() / 1000.0;
    return a;
}

Answer FakeEngine::ask(const Video* video, const std::string& question, const GenerateOptions& opt) {
    InFlight guard(*this);
    last_max_new_tokens = opt.max_new_tokens;
    work(work_time);
    ++answers;
    return fake_answer(video, {question, Task::question, opt});
}

namespace {

class FakeBatch final : public Batch {
public:
    FakeBatch(FakeEngine& e, const Video* v) : e_(e), video_(v) {}

    int add(const Question& q) override {
        InFlight guard(e_);
        e_.last_max_new_tokens = q.options.max_new_tokens;
        VIDI_CHECK(q.text.find("FAIL") == std::string::npos, "the fake engine refuses question '", q.text, "'");
        e_.work(e_.prefill_time, "prefill");
        Row r;
        r.id = next_++;
        r.answer = FakeEngine::fake_answer(video_, q, &r.tokens);
        rows_.push_back(std::move(r));
        return rows_.back().id;
    }

    void cancel(int row) override {
        std::erase_if(rows_, [&](const Row& r) { return r.id == row; });
    }

    std::vector<BatchEvent> step() override {
        InFlight guard(e_);
        size_t longest = 1;
        for (const Row& r : rows_) longest = std::max(longest, r.tokens.size());
        const int rows = static_cast<int>(rows_.size());
        int seen = e_.max_batch_rows.load();
        while (rows > seen && !e_.max_batch_rows.compare_exchange_weak(seen, rows)) {
        }
        ++e_.batch_steps;
        e_.work(std::chrono::milliseconds(e_.work_time.count() / static_cast<long>(longest)));
        std::vector<BatchEvent> events;
        for (Row& r : rows_) {
            BatchEvent ev;
            ev.row = r.id;
            if (r.done < r.tokens.size()) {
                r.text += r.tokens[r.done++];
                ev.token = r.answer.token_ids[r.done - 1];
            }
            ev.text = r.text;
            ev.finished = r.done == r.tokens.size();
            if (ev.finished) {
                ev.answer = r.answer;
                ++e_.answers;
            }
            events.push_back(std::move(ev));
        }
        std::erase_if(rows_, [](const Row& r) { return r.done == r.tokens.size(); });
        return events;
    }

    int rows() const override { return static_cast<int>(rows_.size()); }

private:
    struct Row {
        int id = 0;
        Answer answer;
        std::vector<std::string> tokens;
        size_t done = 0;
        std::string text;
    };
    FakeEngine& e_;
    const Video* video_;
    std::vector<Row> rows_;
    int next_ = 0;
};

}  // namespace

std::unique_ptr<Batch> FakeEngine::batch(const Video* video) { return std::make_unique<FakeBatch>(*this, video); }

void FakeEngine::save_video(const Video& video, const std::string& path) {
    std::ofstream out(path);
    out << "FAKETOKENS " << video.duration();
    VIDI_CHECK(out.good(), "cannot write ", path);
    ++saves;
}

std::shared_ptr<const Video> FakeEngine::load_video(const std::string& path) {
    const std::string head = head_of(path, 64);
    VIDI_CHECK(head.rfind("FAKETOKENS ", 0) == 0, path, " is not a fake token file");
    ++loads;
    return std::make_shared<FakeVideo>(std::stod(head.substr(11)));
}

}  // namespace vidi::test
