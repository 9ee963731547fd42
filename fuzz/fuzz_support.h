// Shared by the libFuzzer harnesses: scratch files in memory and the tiny checkpoint's path.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace vidi::fuzz {

// One in-memory file (memfd) rewritten for every input; path() is what open() takes.
class ScratchFile {
public:
    explicit ScratchFile(const char* name) : fd_(memfd_create(name, MFD_CLOEXEC)) {
        if (fd_ < 0) std::abort();
    }
    ~ScratchFile() { close(fd_); }
    std::string write(const uint8_t* data, size_t size) {
        if (ftruncate(fd_, 0) != 0) std::abort();
        for (size_t at = 0; at < size;) {
            const ssize_t n = pwrite(fd_, data + at, size - at, static_cast<off_t>(at));
            if (n <= 0) std::abort();
            at += static_cast<size_t>(n);
        }
        return "/proc/self/fd/" + std::to_string(fd_);
    }

private:
    int fd_;
};

// The tiny random-weight checkpoint: $VIDI_FUZZ_MODEL, else the build's ../shared/golden/tiny-a.
inline std::string tiny_model_dir() {
    const char* env = std::getenv("VIDI_FUZZ_MODEL");
    return env && *env ? env : std::string(VIDI_SHARED_DIR) + "/golden/tiny-a";
}

// A fresh directory under $TMPDIR (or /tmp).
inline std::string make_temp_dir(const char* tag) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/vidi-fuzz-" + tag + "-XXXXXX";
    if (!mkdtemp(pattern.data())) std::abort();
    return pattern;
}

}  // namespace vidi::fuzz
