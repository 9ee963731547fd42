// A video the server holds open from the moment it is hashed: what /file, /clip and later
// queries read is that file (the same inode through /proc/self/fd), whatever happens to the
// name it came from. A host path must name a file under one of the operator's media roots
// (--media-root) without '.' or '..' components, and resolve, symlinks included, to a regular
// file inside one of them; every refusal is the same "video not available" for the client,
// with the reason in the server's log.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/server/upload_store.h"

namespace vidi::server {

class VideoFile {
public:
    // Marks the file in use for a request's duration (an upload is then never evicted).
    struct Use {
        std::optional<UploadStore::Lease> lease;
    };

    // A client's `video_path`, against the root directories of media_roots().
    static std::shared_ptr<VideoFile> open_in_roots(const std::vector<std::string>& roots,
                                                    const std::string& client_path);
    // An upload the store keeps.
    static std::shared_ptr<VideoFile> open_upload(std::shared_ptr<UploadStore::File> upload);
    ~VideoFile();
    VideoFile(const VideoFile&) = delete;
    VideoFile& operator=(const VideoFile&) = delete;

    // What FFmpeg opens: /proc/self/fd/N, the very file that was checked and hashed.
    const std::string& path() const { return fd_path_; }
    // Where it was found (the resolved host path or the store's file): names, extensions, logs.
    const std::string& real_path() const { return real_path_; }
    int64_t size() const { return size_; }
    const std::shared_ptr<UploadStore::File>& upload() const { return upload_; }
    // Throws "video not available" when the file changed since it was opened (size or
    // modification time) or its upload was evicted.
    Use use() const;
    // Reads up to n bytes at `offset`; returns the count (0 at the end), -1 on error.
    ssize_t read_at(char* buf, size_t n, int64_t offset) const;
    // SHA-256 of the content (reads the whole file: run it on a bounded worker, whose
    // cancellation `progress` can pass on by throwing).
    std::string sha256(const HashProgress& progress = nullptr) const;
    // The file as the kernel knows it at open: device, inode, size, modification and status
    // change times. The same identity is the same content, short of a write that restores
    // both times (the status change time cannot be set back): what digests are cached by.
    const std::string& identity() const { return identity_; }

private:
    VideoFile(int fd, std::string real_path, std::shared_ptr<UploadStore::File> upload);
    int fd_;
    std::string fd_path_, real_path_;
    int64_t size_ = 0;
    int64_t mtime_ns_ = 0;
    std::string identity_;
    std::shared_ptr<UploadStore::File> upload_;
};

// The operator's --media-root directories, each as resolved and as spelled (made absolute);
// throws vidi::Error naming one that does not exist or is not a directory.
std::vector<std::string> media_roots(const std::vector<std::string>& dirs);

}  // namespace vidi::server
