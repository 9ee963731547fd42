// What GET /metrics reports, in the Prometheus text format (version 0.0.4): requests by
// endpoint and status, the engine's queue and batch, encode times, prefill and decode
// throughput, cache lookups, GPU memory. Updated by the HTTP threads and the engine's worker.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace vidi::server {

// Values read when the page is rendered (they live elsewhere: the queue, the caches).
struct LiveCounts {
    size_t queue_waiting = 0;  // requests and jobs waiting for the engine
    bool busy = false;         // the engine is working
    size_t videos = 0, cache_entries = 0;
    int64_t cache_bytes = 0, upload_bytes = 0;
};

class Metrics {
public:
    // The route a path belongs to ("/v1/videos/{id}/query"), so that ids do not make labels.
    static std::string endpoint_of(const std::string& path);

    void request(const std::string& method, const std::string& path, int status);
    // A decoding step of a batch: its rows and tokens, and how long it took.
    void batch_step(int rows, int tokens, double seconds);
    void batch_rows(int rows);  // rows in the batch now (0 when the engine is idle)
    void prefill(int64_t tokens, double seconds);
    void video_lookup(const std::string& source, double seconds);  // "memory", "disk", "encoded"
    void host_file_digest(bool known);  // a video_path's SHA-256: read anew, or known by its identity
    void gpu_memory(size_t in_use, size_t limit);

    std::string render(const LiveCounts& live) const;

private:
    mutable std::mutex mu_;
    std::map<std::tuple<std::string, std::string, int>, int64_t> requests_;  // (endpoint, method, status)
    std::map<std::string, int64_t> lookups_;                                 // by source
    int64_t digests_hashed_ = 0, digests_known_ = 0;
    int rows_now_ = 0;
    int64_t steps_ = 0, decode_tokens_ = 0, prefill_tokens_ = 0;
    double decode_s_ = 0, prefill_s_ = 0, last_decode_rate_ = 0, last_prefill_rate_ = 0;
    std::vector<int64_t> encode_buckets_;  // per kEncodeBuckets bound (not cumulative)
    int64_t encodes_ = 0;
    double encode_s_ = 0;
    size_t gpu_in_use_ = 0, gpu_limit_ = 0;
};

}  // namespace vidi::server
