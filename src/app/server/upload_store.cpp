#include "app/server/upload_store.h"

#include <filesystem>
#include <vector>

#include "app/server/form.h"
#include "app/server/http_error.h"
#include "app/server/sha256.h"

namespace fs = std::filesystem;

namespace vidi::server {

struct UploadStore::State {
    std::mutex mu;
    int64_t max_bytes = 0;
    int64_t used = 0;  // committed files + reservations of uploads being received
    int max_uploads = 0;
    int receiving = 0;
    uint64_t clock = 0;        // use order
    std::list<File*> files;    // committed, not yet destroyed
    OnEvict on_evict;

    // Reserves n bytes, evicting least recently used idle files as needed. Throws 507.
    void reserve(int64_t n) {
        std::vector<std::shared_ptr<File>> evicted;
        bool fits;
        {
            std::lock_guard lock(mu);
            while (used + n > max_bytes) {
                std::shared_ptr<File> oldest;  // idle and not being destroyed
                for (File* f : files)
                    if (!f->evicted_ && f->users_ == 0 && (!oldest || f->last_use_ < oldest->last_use_))
                        if (auto alive = f->weak_from_this().lock()) oldest = std::move(alive);
                if (!oldest) break;
                oldest->evicted_ = true;
                std::error_code ec;
                fs::remove(oldest->path_, ec);
                used -= oldest->bytes_;
                evicted.push_back(std::move(oldest));
            }
            fits = used + n <= max_bytes;
            if (fits) used += n;
        }
        OnEvict notify;
        {
            std::lock_guard lock(mu);
            notify = on_evict;
        }
        for (auto& f : evicted)
            if (notify) notify(*f);
        if (!fits)
            throw HttpError(507, "the upload store is full of videos in use (--upload-store-mb); retry later");
    }
    void release(int64_t n) {
        std::lock_guard lock(mu);
        used -= n;
    }
};

// ---- File, Lease ----

UploadStore::File::File(std::shared_ptr<State> state, std::string path, int64_t bytes, std::string sha256)
    : state_(std::move(state)), path_(std::move(path)), bytes_(bytes), sha256_(std::move(sha256)) {}

UploadStore::File::~File() {
    std::lock_guard lock(state_->mu);
    state_->files.remove(this);
    if (!evicted_) {
        state_->used -= bytes_;
        std::error_code ec;
        fs::remove(path_, ec);
    }
}

UploadStore::Lease UploadStore::File::lease() const {
    {
        std::lock_guard lock(state_->mu);
        if (evicted_) throw video_unavailable(path_ + " was evicted from the upload store (--upload-store-mb)");
        ++users_;
        last_use_ = ++state_->clock;
    }
    return Lease(shared_from_this());
}

UploadStore::Lease::Lease(Lease&& o) noexcept : file_(std::move(o.file_)) {}

UploadStore::Lease& UploadStore::Lease::operator=(Lease&& o) noexcept {
    if (this != &o) {
        release();
        file_ = std::move(o.file_);
    }
    return *this;
}

UploadStore::Lease::~Lease() { release(); }

void UploadStore::Lease::release() {
    if (!file_) return;
    {
        std::lock_guard lock(file_->state_->mu);
        --file_->users_;
        file_->last_use_ = ++file_->state_->clock;
    }
    file_.reset();
}

// ---- Writer ----

UploadStore::Writer::Writer(std::shared_ptr<State> state, std::string path, int64_t max_bytes)
    : state_(std::move(state)), path_(std::move(path)), max_bytes_(max_bytes) {
    out_ = std::fopen(path_.c_str(), "wb");
    if (!out_) throw HttpError(500, "cannot create an upload file", "cannot create " + path_);
}

UploadStore::Writer::~Writer() {
    if (committed_) return;
    if (out_) std::fclose(out_);
    std::error_code ec;
    fs::remove(path_, ec);
    std::lock_guard lock(state_->mu);
    state_->used -= bytes_;
    --state_->receiving;
}

void UploadStore::Writer::write(const char* data, size_t n) {
    if (bytes_ + static_cast<int64_t>(n) > max_bytes_)
        throw HttpError(413, "the uploaded video is larger than the server's limit of " +
                                 std::to_string(max_bytes_ >> 20) + " MiB (--max-upload-mb)");
    state_->reserve(static_cast<int64_t>(n));
    bytes_ += static_cast<int64_t>(n);  // reserved: the destructor gives it back
    if (std::fwrite(data, 1, n, out_) != n)
        throw HttpError(507, "could not store the upload (disk full?)", "write failed: " + path_);
    hash_.feed(data, n);
}

std::shared_ptr<UploadStore::File> UploadStore::Writer::commit() {
    const bool closed = std::fclose(out_) == 0;
    out_ = nullptr;
    if (!closed) throw HttpError(507, "could not store the upload (disk full?)", "close failed: " + path_);
    std::shared_ptr<File> file(new File(state_, path_, bytes_, hash_.hex()));
    std::lock_guard lock(state_->mu);
    --state_->receiving;
    file->last_use_ = ++state_->clock;
    state_->files.push_back(file.get());
    committed_ = true;
    return file;
}

// ---- UploadStore ----

UploadStore::UploadStore(std::string dir, int64_t max_bytes, int max_uploads, int64_t max_upload_bytes)
    : dir_(std::move(dir)), state_(std::make_shared<State>()), max_upload_bytes_(max_upload_bytes) {
    fs::create_directories(dir_);
    state_->max_bytes = max_bytes;
    state_->max_uploads = max_uploads;
}

UploadStore::~UploadStore() = default;

void UploadStore::set_on_evict(OnEvict on_evict) {
    std::lock_guard lock(state_->mu);
    state_->on_evict = std::move(on_evict);
}

std::unique_ptr<UploadStore::Writer> UploadStore::begin(const std::string& extension) {
    {
        std::lock_guard lock(state_->mu);
        if (state_->receiving >= state_->max_uploads)
            throw HttpError(503, "busy: " + std::to_string(state_->max_uploads) +
                                     " uploads are being received already (--max-uploads); retry later");
        ++state_->receiving;
    }
    try {
        return std::unique_ptr<Writer>(new Writer(state_, unique_path(dir_, "upload", extension), max_upload_bytes_));
    } catch (...) {
        std::lock_guard lock(state_->mu);
        --state_->receiving;
        throw;
    }
}

int64_t UploadStore::bytes() const {
    std::lock_guard lock(state_->mu);
    return state_->used;
}

size_t UploadStore::files() const {
    std::lock_guard lock(state_->mu);
    return state_->files.size();
}

}  // namespace vidi::server
