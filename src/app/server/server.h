// The HTTP service behind `vidi serve`: routes, uploads, the job queue that serializes
// engine work, the per-video cache and the embedded web page. See docs/server.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "app/server/job_queue.h"
#include "app/server/video_cache.h"
#include "vidi/vidi.h"

namespace vidi::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8099;                          // 0: any free port
    int64_t max_upload_bytes = 2048LL << 20;  // one uploaded video
    int timeout_s = 600;                      // per request, queueing included
    int max_new_tokens = GenerateOptions{}.max_new_tokens;  // per answer; requests may ask for fewer
    CacheOptions cache;                       // cache.dir empty: memory only
    std::string model_key;                    // names the model in cache files
    std::string work_dir;                     // uploads and clips; empty: a fresh temp dir
};

class Server {
public:
    // `queue` runs all engine work; the engine's progress callback should call
    // queue.throw_if_cancelled() so timeouts and shutdown can stop long jobs.
    Server(Engine& engine, JobQueue& queue, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds the socket; returns the port (the chosen one when options.port is 0).
    // Throws vidi::Error when the address cannot be bound.
    int bind();
    // Serves until stop(); returns false when the listener failed.
    bool run();
    // Stops listening and lets in-flight requests finish; safe from any thread.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vidi::server
