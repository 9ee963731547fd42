// The threads that serve connections, with a bounded queue. httplib's own ThreadPool queues
// every accepted connection without a cap (each holding a file descriptor: a few thousand idle
// connections ran the process out of them, and then uploads and videos could not be opened).
// Here the accepting thread waits while the queue is full, so further connections wait in the
// kernel's listen backlog instead, outside the process.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vidi::server {

class ConnectionPool : public httplib::TaskQueue {
public:
    ConnectionPool(size_t threads, size_t max_queued);
    ~ConnectionPool() override;

    // Blocks while `max_queued` connections already wait (until shutdown()).
    void enqueue(std::function<void()> fn) override;
    // Runs what is queued, then joins the threads; a waiting enqueue() returns, its
    // connection run at once on the caller's thread (so that its socket is closed).
    void shutdown() override;

    size_t queued() const;

private:
    void work();

    const size_t max_queued_;
    mutable std::mutex mu_;
    std::condition_variable has_work_, has_room_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace vidi::server
