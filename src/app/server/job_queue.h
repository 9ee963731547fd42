// Runs engine work one job at a time on a single worker thread, in arrival order.
// The queue is bounded: submit() refuses work when it is full (the server answers 503).
// A job whose caller stopped waiting (timeout, shutdown) is cancelled: skipped if it has
// not started, and aborted at the engine's next progress report if it has. The engine's
// progress reports reach the running job's listener (a client watching an encode).
#pragma once

#include <atomic>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace vidi::server {

// Thrown into a job that was cancelled, and rethrown to its caller.
class JobCancelled : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The engine's progress: stage, units done, total (0 when unknown).
using ProgressListener = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

class JobQueue {
    struct Job {
        std::function<void()> work;
        ProgressListener listener;
        std::function<void(const std::string&)> on_skip;
        std::promise<void> done;
        std::atomic<bool> cancelled{false};
        std::mutex reason_mu;
        std::string reason;

        void cancel(const std::string& why) {
            std::lock_guard lock(reason_mu);
            if (!cancelled.exchange(true)) reason = why;
        }
        std::string cancel_reason() {
            std::lock_guard lock(reason_mu);
            return reason;
        }
        // Once the job ran or was dropped: what its functions hold goes now, not when the last
        // ticket does (a batch's work holds the batch, whose ticket holds the job: a cycle that
        // kept every request's upload, lease and open file for ever).
        void release() {
            work = nullptr;
            listener = nullptr;
            on_skip = nullptr;
        }
    };

public:
    // What submit() hands back: wait for the job, then take its result (or exception).
    class Ticket {
    public:
        // Waits up to `timeout`. On timeout the job is cancelled with `reason` and
        // false is returned; true when it finished (successfully or not).
        bool wait(std::chrono::milliseconds timeout, const std::string& reason);
        // Whether the job finished within `timeout` (nothing is cancelled).
        bool done_within(std::chrono::milliseconds timeout);
        void get();  // rethrows the job's exception, JobCancelled included
        // Cancels the job without waiting (skipped, or aborted at its next progress report).
        void cancel(const std::string& reason) { job_->cancel(reason); }

    private:
        friend class JobQueue;
        std::shared_ptr<Job> job_;
        std::future<void> result_;
    };

    explicit JobQueue(size_t capacity);  // capacity: waiting jobs, the running one excluded
    ~JobQueue();
    JobQueue(const JobQueue&) = delete;
    JobQueue& operator=(const JobQueue&) = delete;

    // Null when the queue is full or shut down. `listener` hears the engine's progress while
    // the job runs (on the worker thread); `on_skip` hears why, when the job will never run
    // (cancelled before it started, or dropped by shutdown).
    std::unique_ptr<Ticket> submit(std::function<void()> work, ProgressListener listener = nullptr,
                                   std::function<void(const std::string&)> on_skip = nullptr);
    // Cancels every waiting job and the running one with `reason`, then joins the worker.
    void shutdown(const std::string& reason);

    size_t waiting() const;
    bool busy() const { return running_.load() != nullptr; }
    // Called from the engine's progress callback (on the worker thread): throws
    // JobCancelled when the running job has been cancelled, so long work stops early.
    void throw_if_cancelled() const;
    // The engine's progress callback (on the worker thread): throw_if_cancelled(), then the
    // running job's listener hears it.
    void progress(const std::string& stage, int64_t done, int64_t total) const;

private:
    void run_worker();

    const size_t capacity_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Job>> waiting_;
    bool stopping_ = false;
    std::atomic<Job*> running_{nullptr};
    std::mutex join_mu_;
    std::thread worker_;
};

}  // namespace vidi::server
