#include "app/server/connection_pool.h"

#include <algorithm>

namespace vidi::server {

ConnectionPool::ConnectionPool(size_t threads, size_t max_queued) : max_queued_(std::max<size_t>(1, max_queued)) {
    for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) threads_.emplace_back([this] { work(); });
}

ConnectionPool::~ConnectionPool() { shutdown(); }

void ConnectionPool::enqueue(std::function<void()> fn) {
    std::unique_lock lock(mu_);
    has_room_.wait(lock, [&] { return stopping_ || jobs_.size() < max_queued_; });
    if (stopping_) {
        lock.unlock();
        fn();  // httplib's connection task closes its socket when it returns
        return;
    }
    jobs_.push_back(std::move(fn));
    has_work_.notify_one();
}

void ConnectionPool::shutdown() {
    {
        std::lock_guard lock(mu_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
    }
    has_work_.notify_all();
    has_room_.notify_all();
    for (std::thread& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

size_t ConnectionPool::queued() const {
    std::lock_guard lock(mu_);
    return jobs_.size();
}

void ConnectionPool::work() {
    for (;;) {
        std::function<void()> fn;
        {
            std::unique_lock lock(mu_);
            has_work_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stopping, nothing left
            fn = std::move(jobs_.front());
            jobs_.pop_front();
        }
        has_room_.notify_one();
        fn();
    }
}

}  // namespace vidi::server
