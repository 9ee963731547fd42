// The checkpoint tools' byte progress on stderr (make-checkpoint, quantize, inspect --values):
// one line rewritten in place, "\rLABEL: 1.25 / 20.92 GB VERB (6%)", at most every `step`
// bytes and at the end; in GB from 1 GB of total on, else MB.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace vidi::app {

class ByteProgress {
public:
    ByteProgress(std::string label, std::string verb, uint64_t step)
        : label_(std::move(label)), verb_(std::move(verb)), step_(step) {}

    void operator()(uint64_t done, uint64_t total) {
        if (done - shown_ < step_ && done != total) return;
        shown_ = done;
        open_ = true;
        const bool big = total >= 1'000'000'000;
        const double unit = big ? 1e9 : 1e6;
        std::fprintf(stderr, "\r%s: %.2f / %.2f %s %s (%.0f%%)", label_.c_str(), done / unit, total / unit,
                     big ? "GB" : "MB", verb_.c_str(), total ? 100.0 * done / total : 100.0);
        std::fflush(stderr);
    }
    // Ends the line where one was printed (before what comes next on stderr: a summary, an error).
    void end_line() {
        if (open_) std::fputc('\n', stderr);
        open_ = false;
    }

private:
    std::string label_, verb_;
    uint64_t step_;
    uint64_t shown_ = 0;
    bool open_ = false;
};

}  // namespace vidi::app
