// Uploaded videos on the server's disk, within a byte budget (--upload-store-mb). A new upload
// makes room by deleting the least recently used uploads that no request is reading right now
// (a Lease marks a file in use: it is never deleted under a reader); whoever registered a
// deleted upload is told (on_evict) so it can drop the registration. At most max_uploads are
// being received at once. An upload nobody holds any more is deleted at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "app/server/sha256.h"

namespace vidi::server {

class UploadStore {
    struct State;

public:
    class File;
    using OnEvict = std::function<void(const File&)>;

    // Marks a file in use while it lives; a file in use is never evicted.
    class Lease {
    public:
        Lease(Lease&&) noexcept;
        Lease& operator=(Lease&&) noexcept;
        ~Lease();

    private:
        friend class File;
        void release();
        explicit Lease(std::shared_ptr<const File> file) : file_(std::move(file)) {}
        std::shared_ptr<const File> file_;
    };

    class File : public std::enable_shared_from_this<File> {
    public:
        ~File();
        const std::string& path() const { return path_; }
        int64_t bytes() const { return bytes_; }
        const std::string& sha256() const { return sha256_; }
        // Throws the "video not available" HttpError when the file was evicted meanwhile.
        Lease lease() const;

    private:
        friend class UploadStore;
        friend class Lease;
        File(std::shared_ptr<State> state, std::string path, int64_t bytes, std::string sha256);
        std::shared_ptr<State> state_;
        std::string path_;
        int64_t bytes_;
        std::string sha256_;
        // Guarded by State::mu.
        mutable int users_ = 0;
        mutable uint64_t last_use_ = 0;
        mutable bool evicted_ = false;
    };

    // An upload being received: bytes go to disk (room is made as they come) and into its
    // SHA-256; commit() makes it a File. Dropped without commit, it leaves nothing behind.
    class Writer {
    public:
        ~Writer();
        Writer(const Writer&) = delete;
        Writer& operator=(const Writer&) = delete;
        // Throws HttpError 413 past max_bytes, 507 when the store has no room for it.
        void write(const char* data, size_t n);
        int64_t bytes() const { return bytes_; }
        std::shared_ptr<File> commit();

    private:
        friend class UploadStore;
        Writer(std::shared_ptr<State> state, std::string path, int64_t max_bytes);
        std::shared_ptr<State> state_;
        std::string path_;
        int64_t max_bytes_;
        std::FILE* out_ = nullptr;
        Sha256 hash_;
        int64_t bytes_ = 0;
        bool committed_ = false;
    };

    // `dir` is created when missing; max_upload_bytes bounds one upload.
    UploadStore(std::string dir, int64_t max_bytes, int max_uploads, int64_t max_upload_bytes);
    ~UploadStore();
    UploadStore(const UploadStore&) = delete;
    UploadStore& operator=(const UploadStore&) = delete;

    void set_on_evict(OnEvict on_evict);
    // Throws HttpError(503) when max_uploads uploads are being received already.
    std::unique_ptr<Writer> begin(const std::string& extension);

    int64_t bytes() const;  // on disk now, uploads being received included
    size_t files() const;   // committed files
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
    std::shared_ptr<State> state_;
    int64_t max_upload_bytes_;
};

}  // namespace vidi::server
