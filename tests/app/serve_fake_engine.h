// A test-only Engine: deterministic answers without a model, so the server's own logic
// (queueing, timeouts, errors, cache, uploads) can be checked quickly and exactly.
// Videos are "FAKEVIDEO <duration>" text files or real MP4s (duration 12); anything else
// fails to "decode" with vidi::Error, as a corrupt file does in the real engine;
// "FAKEOOM" files fail as the GPU running out of memory does.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "vidi/vidi.h"

namespace vidi::test {

class FakeVideo : public Video {
public:
    explicit FakeVideo(double duration) : duration_(duration) {}
    double duration() const override { return duration_; }
    int64_t frames() const override { return static_cast<int64_t>(duration_); }
    int64_t visual_tokens() const override { return 10 * frames(); }
    int64_t audio_tokens() const override { return 5; }
    double encode_seconds() const override { return 0; }

private:
    double duration_;
};

class FakeEngine : public Engine {
public:
    std::string model_name() const override { return "fake-model"; }
    std::string family_name() const override { return "fake-family"; }
    std::string backend_name() const override { return "fake"; }
    // A question of more than 1000 characters is past the fake's "context".
    void check_question(const Question& q, bool with_video) const override;
    std::shared_ptr<const Video> encode_video(const std::string& path) override;
    Answer retrieve(const Video& video, const std::string& query, const GenerateOptions& opt = {}) override;
    Answer ask(const Video* video, const std::string& question, const GenerateOptions& opt = {}) override;
    // Rows produce their answer (the one retrieve()/ask() give) a word per step; a step
    // takes work_time / words of the longest row, whatever the number of rows.
    std::unique_ptr<Batch> batch(const Video* video) override;
    MemoryUse memory_use() const override { return memory; }
    void save_video(const Video& video, const std::string& path) override;
    std::shared_ptr<const Video> load_video(const std::string& path) override;

    // The answer retrieve() gives for `query`: one range derived from the query's length.
    static TimeRange expected_range(const std::string& query, double duration);
    // The answer to a question and the "tokens" (words with their trailing space) of its text.
    static Answer fake_answer(const Video* video, const Question& q, std::vector<std::string>* tokens = nullptr);

    ProgressFn progress;                            // called every 10 ms of "work"
    std::chrono::milliseconds work_time{20};        // per retrieve/ask
    std::chrono::milliseconds encode_time{50};      // per encode_video
    std::atomic<int> encodes{0}, loads{0}, saves{0}, answers{0};
    std::atomic<int> in_flight{0}, max_in_flight{0};
    std::atomic<int> last_max_new_tokens{0};
    std::atomic<int> max_batch_rows{0};  // the most rows a batch step has decoded together
    std::atomic<int> batch_steps{0};
    std::chrono::milliseconds prefill_time{0};  // per Batch::add
    MemoryUse memory{};                         // what memory_use() reports

    // Sleeps `total` in 10 ms pieces, reporting progress (the server's cancellation hook).
    void work(std::chrono::milliseconds total, const char* stage = "generate");
};

}  // namespace vidi::test
