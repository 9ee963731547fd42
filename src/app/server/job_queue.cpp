#include "app/server/job_queue.h"

namespace vidi::server {

bool JobQueue::Ticket::wait(std::chrono::milliseconds timeout, const std::string& reason) {
    if (result_.wait_for(timeout) == std::future_status::ready) return true;
    job_->cancel(reason);
    return false;
}

bool JobQueue::Ticket::done_within(std::chrono::milliseconds timeout) {
    return result_.wait_for(timeout) == std::future_status::ready;
}

void JobQueue::Ticket::get() { result_.get(); }

JobQueue::JobQueue(size_t capacity) : capacity_(capacity), worker_([this] { run_worker(); }) {}

JobQueue::~JobQueue() { shutdown("the server is shutting down"); }

std::unique_ptr<JobQueue::Ticket> JobQueue::submit(std::function<void()> work, ProgressListener listener,
                                                   std::function<void(const std::string&)> on_skip) {
    auto job = std::make_shared<Job>();
    job->work = std::move(work);
    job->listener = std::move(listener);
    job->on_skip = std::move(on_skip);
    auto ticket = std::make_unique<Ticket>();
    ticket->job_ = job;
    ticket->result_ = job->done.get_future();
    {
        std::lock_guard lock(mu_);
        if (stopping_ || waiting_.size() >= capacity_) return nullptr;
        waiting_.push_back(std::move(job));
    }
    cv_.notify_one();
    return ticket;
}

void JobQueue::shutdown(const std::string& reason) {
    std::deque<std::shared_ptr<Job>> dropped;
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        dropped.swap(waiting_);
        if (Job* r = running_.load()) r->cancel(reason);
    }
    cv_.notify_all();
    for (auto& job : dropped) {
        if (job->on_skip) job->on_skip(reason);
        job->release();
        job->done.set_exception(std::make_exception_ptr(JobCancelled(reason)));
    }
    std::lock_guard lock(join_mu_);
    if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
}

size_t JobQueue::waiting() const {
    std::lock_guard lock(mu_);
    return waiting_.size();
}

void JobQueue::throw_if_cancelled() const {
    Job* r = running_.load();
    if (r && r->cancelled.load()) throw JobCancelled(r->cancel_reason());
}

void JobQueue::progress(const std::string& stage, int64_t done, int64_t total) const {
    throw_if_cancelled();
    if (Job* r = running_.load(); r && r->listener) r->listener(stage, done, total);
}

void JobQueue::run_worker() {
    for (;;) {
        std::shared_ptr<Job> job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !waiting_.empty(); });
            if (waiting_.empty()) return;  // stopping, nothing left
            job = std::move(waiting_.front());
            waiting_.pop_front();
            running_ = job.get();
        }
        std::exception_ptr error;
        try {
            if (job->cancelled.load()) {
                if (job->on_skip) job->on_skip(job->cancel_reason());
                throw JobCancelled(job->cancel_reason());
            }
            job->work();
        } catch (...) {
            error = std::current_exception();
        }
        {
            std::lock_guard lock(mu_);  // shutdown() reads running_ under the lock
            running_ = nullptr;
        }
        job->release();  // before the waiter hears of it: what the job held is gone by then
        if (error) job->done.set_exception(error);
        else job->done.set_value();
    }
}

}  // namespace vidi::server
