// Diagnostic switches read from the environment (VIDI_PROFILE=1, VIDI_CUDA_GRAPHS=0, ...).
#pragma once

#include <charconv>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace vidi {

// Whether environment variable `name` is set to exactly `value`.
inline bool env_is(const char* name, std::string_view value) {
    const char* v = std::getenv(name);
    return v && std::string_view(v) == value;
}

// Environment variable `name` as a count from 0 to `most` (unset or anything else: nullopt).
inline std::optional<int> env_count(const char* name, int most) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    const std::string_view s(v);
    int n = -1;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n < 0 || n > most) return std::nullopt;
    return n;
}

}  // namespace vidi
