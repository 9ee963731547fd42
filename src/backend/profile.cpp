// Backend::section and its report: which parts of the model the device's time goes to.
// Each section records a time point when it opens and when it closes; nothing waits for
// the device until the report, so the queue runs as it would unprofiled (a GPU records two
// events a section, a few microseconds of host time each).
#include <algorithm>
#include <cstdio>
#include <map>
#include <string_view>

#include "backend/backend.h"
#include "core/env_switch.h"

namespace vidi {

Section::Section(Backend* be, const char* name) : be_(be) {
    if (!be_) return;
    span_ = be_->spans_.size();
    be_->spans_.push_back({name, be_->time_point(), -1});
}

Section::~Section() {
    if (be_) be_->spans_[span_].to = be_->time_point();
}

bool Backend::profiling() {
    if (profiling_ < 0) {
        profiling_ = env_is("VIDI_PROFILE", "1");
    }
    return profiling_ == 1;
}

std::vector<std::string> Backend::profile_report() {
    synchronize();
    struct Sum {
        int64_t calls = 0;
        double ms = 0;
    };
    std::map<std::string_view, Sum> sums;
    for (const Span& s : spans_) {
        if (s.to < 0) continue;  // still open: reported next time
        Sum& sum = sums[s.name];
        ++sum.calls;
        sum.ms += ms_between(s.from, s.to);
    }
    std::vector<std::pair<std::string_view, Sum>> rows(sums.begin(), sums.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    std::vector<std::string> lines;
    for (const auto& [name, sum] : rows) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "profile: %-22.*s %9.1f ms  %6lld calls", static_cast<int>(name.size()),
                      name.data(), sum.ms, static_cast<long long>(sum.calls));
        lines.emplace_back(buf);
    }
    // The device's timeline from the first section's start to the last one's end, and how much
    // of it no section covers: where it idled (waiting for the host) or ran unnamed work.
    std::vector<std::pair<double, double>> spans;
    for (const Span& s : spans_)
        if (s.to >= 0) spans.emplace_back(ms_between(spans_.front().from, s.from), ms_between(spans_.front().from, s.to));
    if (!spans.empty()) {
        std::sort(spans.begin(), spans.end());
        double covered = 0, end = spans.front().first, last = spans.front().first;
        for (const auto& [a, b] : spans) {
            if (b > end) covered += b - std::max(a, end), end = b;
            last = std::max(last, b);
        }
        char buf[160];
        std::snprintf(buf, sizeof buf, "profile: device timeline %.1f ms from the first section to the last, %.1f ms of "
                      "it outside every section", last - spans.front().first, last - spans.front().first - covered);
        lines.emplace_back(buf);
    }
    // Sections still open hold indices into spans_: then everything waits for a later report.
    if (std::none_of(spans_.begin(), spans_.end(), [](const Span& s) { return s.to < 0; })) {
        spans_.clear();
        forget_time_points();
    }
    return lines;
}

}  // namespace vidi
