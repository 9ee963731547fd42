// Questions share the engine by video: a question joins the batch that decodes its video (or
// waits to) at that batch's next step, instead of waiting for it to finish (continuous
// batching, Engine::batch); a question about another video waits its turn in the job queue.
// A running batch stops taking newcomers once other work waits in the queue, so no video
// waits for ever. Each request waits on its own ticket (its own deadline, its own
// cancellation) and sees its answer grow token by token.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "app/server/job_queue.h"
#include "app/server/metrics.h"
#include "app/server/video_cache.h"
#include "app/server/video_registry.h"
#include "vidi/vidi.h"

namespace vidi::server {

using Clock = std::chrono::steady_clock;

// A question about a video (or a text-only turn: no source file) and, once answered, what
// the worker found. The request lives as long as its ticket.
struct QueryRequest {
    VideoSource source;  // source.file null: a text-only turn
    VideoFile::Use use;  // the file stays in use (never evicted) until the request is done
    Question question;
    Clock::time_point queued = Clock::now();
    // Filled on the worker:
    Answer answer;
    std::string cache_source;  // "memory", "disk", "encoded" (or "" without video)
    double queue_s = 0, video_s = 0;
};

// One request's progress, shared by the HTTP thread that waits and the engine's worker.
class QueryTicket {
public:
    explicit QueryTicket(std::shared_ptr<QueryRequest> request) : request_(std::move(request)) {}

    struct State {
        uint64_t version = 0;  // grows with every change
        std::string text;      // the answer so far
        int tokens = 0;
        bool finished = false;
        std::exception_ptr error;  // set when the request failed
    };
    // Waits until the state is newer than `seen` (or final), at most until `deadline`;
    // false on timeout.
    bool wait_newer(uint64_t seen, Clock::time_point deadline) const;
    State state() const;
    // The client stopped waiting: the request leaves its batch at the next step (or is skipped).
    void cancel(const std::string& reason);
    bool cancelled() const;
    std::string cancel_reason() const;

    QueryRequest& request() { return *request_; }

    // The worker's side.
    void update(const std::string& text, int tokens);
    void finish();  // the answer is in request().answer
    void fail(std::exception_ptr error);
    void on_cancel(std::function<void()> f);

private:
    std::shared_ptr<QueryRequest> request_;
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    State state_;
    bool cancelled_ = false;
    std::string reason_;
    std::function<void()> on_cancel_;
};

class Batcher {
public:
    Batcher(Engine& engine, JobQueue& queue, VideoCache& cache, Metrics& metrics, int max_batch);
    // Queues the request: it joins the batch of its video when that one takes it, else a new
    // job goes into the queue. Throws HttpError(503) when the queue is full.
    std::shared_ptr<QueryTicket> submit(std::shared_ptr<QueryRequest> request);
    size_t waiting() const;  // requests waiting to join a batch

private:
    struct Entry;
    using Member = std::shared_ptr<QueryTicket>;
    void run(const std::shared_ptr<Entry>& e);
    // The members that joined since the last call (the batch's first ones on the first call).
    std::vector<Member> take_newcomers(Entry& e);
    void close(Entry& e);
    // A member finished or failed: it no longer counts.
    void leave(Entry& e, const Member& m);

    Engine& engine_;
    JobQueue& queue_;
    VideoCache& cache_;
    Metrics& metrics_;
    const size_t max_batch_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<Entry>> open_;  // per video: the entry newcomers join
};

}  // namespace vidi::server
