// The public time formats (vidi/vidi.h): HH:MM:SS truncated as the official script does,
// or with decimals.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "vidi/vidi.h"

namespace vidi {

std::string format_timestamp(double seconds, int decimals) {
    if (!(seconds >= 0)) seconds = 0;
    char buf[64];
    if (decimals <= 0) {
        long long s = static_cast<long long>(seconds);  // the official script truncates
        std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    } else {
        decimals = std::min(decimals, 9);  // finer than nanoseconds means nothing here
        double scale = std::pow(10.0, decimals);
        long long units = static_cast<long long>(std::floor(seconds * scale + 0.5));
        long long whole = units / static_cast<long long>(scale), frac = units % static_cast<long long>(scale);
        std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld.%0*lld", whole / 3600, whole / 60 % 60, whole % 60,
                      decimals, frac);
    }
    return buf;
}

std::string format_range(const TimeRange& r, int decimals) {
    return format_timestamp(r.start, decimals) + "-" + format_timestamp(r.end, decimals);
}

}  // namespace vidi
