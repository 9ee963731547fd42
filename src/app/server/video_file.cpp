#include "app/server/video_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "app/server/http_error.h"
#include "app/server/sha256.h"
#include "vidi/error.h"

namespace fs = std::filesystem;

namespace vidi::server {
namespace {

bool inside(const std::string& path, const std::string& root) {
    if (path.size() < root.size() || path.compare(0, root.size(), root) != 0) return false;
    return path.size() == root.size() || root.back() == '/' || path[root.size()] == '/';
}

bool inside_any(const std::string& path, const std::vector<std::string>& roots) {
    for (const auto& r : roots)
        if (inside(path, r)) return true;
    return false;
}

std::string fd_link(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

int64_t mtime_ns(const struct stat& st) { return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec; }

}  // namespace

std::vector<std::string> media_roots(const std::vector<std::string>& dirs) {
    std::vector<std::string> roots;
    const auto add = [&roots](std::string r) {
        if (std::find(roots.begin(), roots.end(), r) == roots.end()) roots.push_back(std::move(r));
    };
    for (const auto& d : dirs) {
        std::error_code ec;
        const fs::path canonical = fs::canonical(d, ec);
        VIDI_CHECK(!ec && fs::is_directory(canonical, ec), "--media-root '", d, "' is not an existing directory");
        add(canonical.string());
        // The operator's own spelling too (a link to the directory, say), for the check a
        // client's path meets before it touches the disk. A resolved path never passes
        // through a link, so this spelling admits nothing more after canonical(); one with
        // '..' would (lexically, "link/../v" is not where the link leads), so it is not kept.
        const fs::path named = fs::absolute(d);
        if (std::none_of(named.begin(), named.end(), [](const fs::path& p) { return p == ".."; })) {
            std::string spelled = named.lexically_normal().string();
            if (spelled.size() > 1 && spelled.back() == '/') spelled.pop_back();
            add(std::move(spelled));
        }
    }
    return roots;
}

VideoFile::VideoFile(int fd, std::string real_path, std::shared_ptr<UploadStore::File> upload)
    : fd_(fd), fd_path_(fd_link(fd)), real_path_(std::move(real_path)), upload_(std::move(upload)) {
    struct stat st {};
    if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd_);
        throw video_unavailable(real_path_ + " is not a regular file");
    }
    size_ = st.st_size;
    mtime_ns_ = mtime_ns(st);
    identity_ = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(size_) + ":" +
                std::to_string(mtime_ns_) + ":" +
                std::to_string(int64_t(st.st_ctim.tv_sec) * 1000000000 + int64_t(st.st_ctim.tv_nsec));
    if (size_ == 0) {
        close(fd_);
        throw video_unavailable(real_path_ + " is empty");
    }
}

VideoFile::~VideoFile() { close(fd_); }

std::shared_ptr<VideoFile> VideoFile::open_in_roots(const std::vector<std::string>& roots,
                                                    const std::string& client_path) {
    if (roots.empty()) throw video_unavailable("video_path '" + client_path + "' refused: no --media-root is set");
    if (client_path.empty() || client_path[0] != '/' || client_path.find('\0') != std::string::npos)
        throw video_unavailable("video_path '" + client_path + "' is not an absolute path");
    // Nothing outside the roots is looked up: resolving "x/../" needs x to exist, so a path
    // that walks out and back in would tell a client which host directories exist.
    const fs::path named(client_path);
    for (const auto& part : named)
        if (part == "." || part == "..")
            throw video_unavailable("video_path '" + client_path + "' has a '.' or '..' component");
    if (!inside_any(named.lexically_normal().string(), roots))
        throw video_unavailable("video_path '" + client_path + "' is outside every --media-root");
    std::error_code ec;
    const std::string real = fs::canonical(client_path, ec).string();
    if (ec) throw video_unavailable("video_path '" + client_path + "': " + ec.message());
    if (!inside_any(real, roots))
        throw video_unavailable("video_path '" + client_path + "' resolves to " + real +
                                ", outside every --media-root");
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused as not regular).
    const int fd = open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        throw video_unavailable("video_path '" + client_path + "': cannot open " + real + ": " + std::strerror(errno));
    // A directory on the way may have been swapped for a link since canonical(): check what
    // was opened, not the name.
    char opened[PATH_MAX + 1] = {};
    const ssize_t n = readlink(fd_link(fd).c_str(), opened, PATH_MAX);
    if (n <= 0 || !inside_any(std::string(opened, static_cast<size_t>(n)), roots)) {
        close(fd);
        throw video_unavailable("video_path '" + client_path + "' changed while it was opened");
    }
    return std::shared_ptr<VideoFile>(new VideoFile(fd, real, nullptr));
}

std::shared_ptr<VideoFile> VideoFile::open_upload(std::shared_ptr<UploadStore::File> upload) {
    const int fd = open(upload->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) throw video_unavailable("cannot open the upload " + upload->path() + ": " + std::strerror(errno));
    const std::string path = upload->path();
    return std::shared_ptr<VideoFile>(new VideoFile(fd, path, std::move(upload)));
}

VideoFile::Use VideoFile::use() const {
    Use u;
    if (upload_) u.lease.emplace(upload_->lease());
    struct stat st {};
    if (fstat(fd_, &st) != 0 || st.st_size != size_ || mtime_ns(st) != mtime_ns_)
        throw video_unavailable(real_path_ + " changed since it was registered");
    return u;
}

ssize_t VideoFile::read_at(char* buf, size_t n, int64_t offset) const {
    for (;;) {
        const ssize_t r = pread(fd_, buf, n, static_cast<off_t>(offset));
        if (r >= 0 || errno != EINTR) return r;
    }
}

std::string VideoFile::sha256(const HashProgress& progress) const { return sha256_fd(fd_, progress); }

}  // namespace vidi::server
