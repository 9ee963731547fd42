// Wall time since a steady-clock point, in seconds: the runtime's timings and profile lines.
#pragma once

#include <chrono>

namespace vidi::runtime {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace vidi::runtime
