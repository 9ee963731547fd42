// A bound on how many lines a second one kind of log message writes, so that a client cannot
// flood the log (each refused connection would otherwise be a line). What is held back is
// counted and reported with the next line let through.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace vidi::server {

class LogLimit {
public:
    using Clock = std::chrono::steady_clock;
    explicit LogLimit(int lines_per_second) : per_second_(lines_per_second) {}

    // Whether a line may be written at `now`; `held_back` gets the lines not written since the
    // last one that was.
    bool allow(Clock::time_point now, int64_t& held_back) {
        std::lock_guard lock(mu_);
        if (now - window_ >= std::chrono::seconds(1)) {
            window_ = now;
            written_ = 0;
        }
        if (written_ >= per_second_) {
            ++held_;
            return false;
        }
        ++written_;
        held_back = held_;
        held_ = 0;
        return true;
    }

private:
    const int per_second_;
    std::mutex mu_;
    Clock::time_point window_{};
    int written_ = 0;
    int64_t held_ = 0;
};

}  // namespace vidi::server
