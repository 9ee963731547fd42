#include "app/server/video_cache.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "app/server/sha256.h"

namespace fs = std::filesystem;

namespace vidi::server {

VideoCache::VideoCache(Engine& engine, CacheOptions options, std::string model_key)
    : engine_(engine), options_(std::move(options)), model_key_(std::move(model_key)) {
    if (!options_.dir.empty()) {
        std::error_code ec;
        fs::create_directories(fs::path(options_.dir) / model_key_, ec);
        VIDI_CHECK(!ec, "cannot create the cache directory ", (fs::path(options_.dir) / model_key_).string(), ": ",
                   ec.message());
    }
}

std::string VideoCache::disk_path(const std::string& sha256) const {
    if (options_.dir.empty()) return "";
    return (fs::path(options_.dir) / model_key_ / (sha256 + ".vidi")).string();
}

VideoCache::Hit VideoCache::get(const std::string& video_path, const std::string& sha256) {
    {
        std::lock_guard lock(mu_);
        auto it = index_.find(sha256);
        if (it != index_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second);
            return {it->second->video, "memory"};
        }
    }
    if (auto video = load_from_disk(sha256)) {
        insert(sha256, video);
        return {video, "disk"};
    }
    auto video = engine_.encode_video(video_path);
    save_to_disk(sha256, *video);
    insert(sha256, video);
    return {video, "encoded"};
}

std::shared_ptr<const Video> VideoCache::load_from_disk(const std::string& sha256) {
    const std::string path = disk_path(sha256);
    if (path.empty() || !fs::exists(path)) return nullptr;
    try {
        auto video = engine_.load_video(path);
        std::error_code ec;  // the file's time is its last use (trim_disk); a read-only cache still works
        fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
        return video;
    } catch (const vidi::Error& e) {
        // A stale or foreign file (another model, an older format): encode afresh.
        std::fprintf(stderr, "vidi serve: ignoring cache file %s: %s\n", path.c_str(), e.what());
        return nullptr;
    }
}

void VideoCache::save_to_disk(const std::string& sha256, const Video& video) {
    const std::string path = disk_path(sha256);
    if (path.empty()) return;
    // Written under a temporary name and renamed, so a reader never sees half a file.
    const std::string tmp = path + ".tmp" + std::to_string(getpid());
    try {
        engine_.save_video(video, tmp);
        fs::rename(tmp, path);
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove(tmp, ec);
        std::fprintf(stderr, "vidi serve: could not write cache file %s: %s\n", path.c_str(), e.what());
        return;
    }
    trim_disk(path);
}

void VideoCache::trim_disk(const std::string& keep) {
    if (options_.max_disk_bytes <= 0) return;
    struct File {
        fs::file_time_type used;
        std::string path;
        int64_t bytes;
    };
    std::vector<File> files;
    int64_t total = 0;
    const auto stale = fs::file_time_type::clock::now() - std::chrono::hours(24);
    std::error_code ec;
    for (fs::recursive_directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code fe;
        if (!it->is_regular_file(fe)) continue;
        const std::string name = it->path().filename().string();
        const auto used = it->last_write_time(fe);
        if (fe) continue;
        if (name.find(".vidi.tmp") != std::string::npos) {
            if (used < stale) fs::remove(it->path(), fe);
            continue;
        }
        if (it->path().extension() != ".vidi") continue;
        const int64_t bytes = static_cast<int64_t>(it->file_size(fe));
        if (fe) continue;
        files.push_back({used, it->path().string(), bytes});
        total += bytes;
    }
    std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.used < b.used; });
    for (const File& f : files) {
        if (total <= options_.max_disk_bytes) break;
        if (fs::equivalent(f.path, keep, ec)) continue;
        if (!fs::remove(f.path, ec)) continue;  // gone already, or not ours to remove: count it
        total -= f.bytes;
        std::fprintf(stderr, "vidi serve: disk cache over %lld MiB: removed %s (%lld MiB, least recently used)\n",
                     static_cast<long long>(options_.max_disk_bytes >> 20), f.path.c_str(),
                     static_cast<long long>(f.bytes >> 20));
    }
}

int64_t VideoCache::estimate_bytes(const Video& v) const {
    return (v.visual_tokens() + v.audio_tokens()) * options_.bytes_per_token;
}

void VideoCache::insert(const std::string& sha256, std::shared_ptr<const Video> video) {
    std::lock_guard lock(mu_);
    if (index_.count(sha256)) return;
    const int64_t size = estimate_bytes(*video);
    lru_.push_front({sha256, std::move(video), size});
    index_[sha256] = lru_.begin();
    bytes_ += size;
    // Evict the least recent, but always keep the newest (it is about to be used).
    while (lru_.size() > 1 && (lru_.size() > options_.max_entries || bytes_ > options_.max_bytes)) {
        bytes_ -= lru_.back().bytes;
        index_.erase(lru_.back().sha256);
        lru_.pop_back();
    }
}

void VideoCache::forget(const std::string& sha256) {
    std::lock_guard lock(mu_);
    auto it = index_.find(sha256);
    if (it == index_.end()) return;
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
}

size_t VideoCache::entries() const {
    std::lock_guard lock(mu_);
    return lru_.size();
}

int64_t VideoCache::bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
}

namespace {
std::string read_if_exists(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}
}  // namespace

std::string model_cache_key(const std::string& model_dir) {
    fs::path dir = fs::weakly_canonical(fs::path(model_dir));
    std::string name = dir.filename().string();
    if (name.empty()) name = "model";
    std::string identity = read_if_exists(dir / "config.json") + read_if_exists(dir / "model.safetensors.index.json");
    return name + "-" + sha256_bytes(identity).substr(0, 12);
}

std::string default_cache_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/vidi";
    if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/vidi";
    return "vidi-cache";
}

}  // namespace vidi::server
