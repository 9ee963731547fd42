#include "io/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "vidi/error.h"

namespace fs = std::filesystem;

namespace vidi::io {

namespace {

std::string mib(uint64_t bytes) { return cat(bytes >> 20, " MiB"); }

// A new file "<base>.tmp-<pid>-<n>", or -1 with errno. O_EXCL: never an existing file, nor a
// symlink someone put at that name; mode 0666 less the umask, as the final file would get.
int create_temp(const std::string& base, std::string* name) {
    static std::atomic<unsigned> counter{0};
    for (;;) {
        *name = cat(base, ".tmp-", getpid(), "-", counter++);
        const int fd = ::open(name->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;  // EEXIST: a crashed run's, under a reused pid
    }
}

std::string dir_of(const std::string& path) {
    const fs::path parent = fs::path(path).parent_path();
    return parent.empty() ? "." : parent.string();
}

}  // namespace

RegularFile::RegularFile(const std::string& path) {
    // Non-blocking: opening a FIFO for reading waits for a writer (forever); regular files ignore it.
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd_ < 0) fail(path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd_);
        fail(path, ": not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
}

RegularFile::~RegularFile() { ::close(fd_); }

std::string read_regular_file(const std::string& path, uint64_t max_bytes) {
    RegularFile f(path);
    const auto too_big = [&] { fail(path, ": larger than the ", mib(max_bytes), " such a file may have"); };
    if (f.size() > max_bytes) too_big();
    std::string text;
    text.reserve(f.size());
    char buf[1 << 16];
    for (;;) {  // to the end, not to size(): a file in /proc says 0 bytes
        const ssize_t n = ::read(f.fd(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(path, ": read failed: ", std::strerror(errno));
        if (n == 0) return text;
        if (text.size() + static_cast<uint64_t>(n) > max_bytes) too_big();
        text.append(buf, static_cast<size_t>(n));
    }
}

ReplacingFile::ReplacingFile(std::string path) : path_(std::move(path)) {
    VIDI_CHECK(!path_.empty(), "no output file given (an empty name)");
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) fail(path_, ": is a directory, not a file name");
        // The rename would put a file in place of a device or a pipe (/dev/null, as root).
        if (!S_ISREG(st.st_mode)) fail(path_, ": is not a regular file (a device or a pipe); name a file");
    }
    const int fd = create_temp(path_, &temp_);
    if (fd < 0) {
        const int err = errno;
        temp_.clear();
        fail(path_, ": cannot create a file in ", dir_of(path_), ": ", std::strerror(err));
    }
    file_ = fdopen(fd, "wb");
    if (!file_) {
        ::close(fd);
        fail(path_, ": cannot create: ", std::strerror(errno));
    }
}

ReplacingFile::~ReplacingFile() {
    if (file_) std::fclose(file_);
    if (!temp_.empty()) ::unlink(temp_.c_str());
}

void ReplacingFile::commit() {
    // Synced before the rename: after a crash, `path` holds the old file or the whole new one.
    const bool written = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
    const int err = errno;
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!written || !closed) fail(path_, ": write failed (disk full?): ", std::strerror(written ? errno : err));
    if (std::rename(temp_.c_str(), path_.c_str()) != 0)
        fail(path_, ": cannot replace it: ", std::strerror(errno));
    temp_.clear();
}

void require_writable_dir(const std::string& dir) {
    std::string probe;
    const int fd = create_temp((fs::path(dir) / ".vidi-probe").string(), &probe);
    if (fd < 0) fail(dir, ": cannot create a file in it: ", std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
}

}  // namespace vidi::io
