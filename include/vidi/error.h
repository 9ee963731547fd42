// The one error type of vidi.cpp. Every failure a user can cause (bad file, bad
// checkpoint, too little memory, bad request) surfaces as vidi::Error with a message
// that names the problem; internal invariants use the same type.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace vidi {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Concatenates the arguments with operator<< (GCC 12 has no <format>).
template <class... Args>
std::string cat(Args&&... args) {
    std::ostringstream os;
    (os << ... << std::forward<Args>(args));
    return os.str();
}

template <class... Args>
[[noreturn]] void fail(Args&&... args) {
    throw Error(cat(std::forward<Args>(args)...));
}

#define VIDI_CHECK(cond, ...)                   \
    do {                                        \
        if (!(cond)) ::vidi::fail(__VA_ARGS__); \
    } while (0)

}  // namespace vidi
