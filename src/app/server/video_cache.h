// Encoded videos, keyed by (content SHA-256, model): an in-memory LRU of Video objects
// bounded by bytes and entries, backed by the engine's media-token files on disk
// (Engine::save_video / load_video), themselves bounded by bytes: a file's modification time
// is its last use, and the least recently used go first. A hit in memory skips all media
// work; a hit on disk skips decoding and the towers (only the media K/V is rebuilt).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "vidi/vidi.h"

namespace vidi::server {

struct CacheOptions {
    std::string dir;               // disk cache root; empty: no disk cache
    int64_t max_bytes = 4LL << 30; // memory budget for encoded videos
    // Disk budget for the token files under `dir` (every model's); 0: none. A 10-minute video
    // of Vidi1.5-9B takes ~0.47 GB from a GPU (66 000 tokens × 3584 bf16), twice that from the CPU.
    int64_t max_disk_bytes = 20LL << 30;
    size_t max_entries = 16;
    int64_t bytes_per_token = 0;   // memory estimate of one media token (Engine::media_token_bytes)
};

class VideoCache {
public:
    // `model_key` names the model in file names (see model_cache_key()).
    VideoCache(Engine& engine, CacheOptions options, std::string model_key);

    struct Hit {
        std::shared_ptr<const Video> video;
        std::string source;  // "memory", "disk" or "encoded"
    };
    // Must run where the engine runs (the job queue's worker).
    Hit get(const std::string& video_path, const std::string& sha256);
    void forget(const std::string& sha256);  // drops the in-memory entry (disk stays)

    size_t entries() const;
    int64_t bytes() const;
    std::string disk_path(const std::string& sha256) const;  // where its tokens live

private:
    int64_t estimate_bytes(const Video& v) const;
    void insert(const std::string& sha256, std::shared_ptr<const Video> video);
    std::shared_ptr<const Video> load_from_disk(const std::string& sha256);
    void save_to_disk(const std::string& sha256, const Video& video);
    // Removes the least recently used token files until the cache fits max_disk_bytes (never
    // `keep`, the file just written), and temporary files older than a day (a crashed writer's).
    void trim_disk(const std::string& keep);

    struct Entry {
        std::string sha256;
        std::shared_ptr<const Video> video;
        int64_t bytes;
    };
    Engine& engine_;
    CacheOptions options_;
    std::string model_key_;
    mutable std::mutex mu_;
    std::list<Entry> lru_;  // most recent first
    std::map<std::string, std::list<Entry>::iterator> index_;
    int64_t bytes_ = 0;
};

// "<checkpoint dir name>-<12 hex of SHA-256 over config.json and the shard index>": two
// checkpoints with the same directory name still get separate cache files.
std::string model_cache_key(const std::string& model_dir);

// $XDG_CACHE_HOME/vidi, else ~/.cache/vidi, else ./vidi-cache.
std::string default_cache_dir();

}  // namespace vidi::server
