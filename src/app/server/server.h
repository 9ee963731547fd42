// The HTTP service behind `vidi serve`: routes, uploads, the job queue that serializes
// engine work, the per-video cache and the embedded web page. See docs/server.md; what it
// protects against, and how, is docs/security.md. The engine should be opened with
// EngineOptions::media_inputs = MediaInputs::VideoFiles (vidi serve does): the server's own
// opens (clip export) use that policy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "app/server/access.h"
#include "app/server/job_queue.h"
#include "app/server/limits.h"
#include "app/server/video_cache.h"
#include "vidi/vidi.h"

namespace vidi::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8099;                          // 0: any free port
    int timeout_s = 600;                      // per request, queueing included
    int max_new_tokens = GenerateOptions{}.max_new_tokens;  // per answer; requests may ask for fewer
    int max_batch = 16;                       // questions about one video decoded together (--max-batch)
    CacheOptions cache;                       // cache.dir empty: memory only
    std::string model_key;                    // names the model in cache files
    std::string work_dir;                     // uploads and clips; empty: a fresh temp dir
    ServerLimits limits;                      // every bound on what clients send (limits.h)
    // Key, Host names, media roots. allowed_hosts empty: the loopback names when `host` is a
    // loopback address, else any Host.
    AccessOptions access;
};

class Server {
public:
    // `queue` runs all engine work; the engine's progress callback should call
    // queue.progress() so timeouts and shutdown can stop long jobs (and clients see encodes
    // progress). Throws
    // vidi::Error for a --media-root that is not a directory.
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
