// Diagnostic switches read from the environment (VIDI_PROFILE=1, VIDI_CUDA_GRAPHS=0, ...).
#pragma once

#include <cstdlib>
#include <string_view>

namespace vidi {

// Whether environment variable `name` is set to exactly `value`.
inline bool env_is(const char* name, std::string_view value) {
    const char* v = std::getenv(name);
    return v && std::string_view(v) == value;
}

}  // namespace vidi
