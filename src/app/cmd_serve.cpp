// vidi serve: the model loads once and answers HTTP requests (API and web page) until
// SIGTERM/SIGINT, which stops the listener, cancels queued work, aborts or finishes the
// running job, and exits 0.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <vector>
#include <thread>

#include "app/commands.h"
#include "app/engine_flags.h"
#include "app/server/server.h"

namespace vidi::app {
namespace {

struct ServeArgs {
    EngineFlags engine;  // --model, --backend, --threads, --frame-batch, --max-new-tokens
    std::string host = "127.0.0.1", cache_dir;
    int port = 8099, timeout_s = 600;
    int64_t max_upload_mb = 2048, upload_store_mb = 8192, cache_mb = 4096, disk_cache_mb = 20480;
    int max_uploads = 4, max_batch = 16;
    int connections_per_address = server::ServerLimits{}.connections_per_address;
    int64_t min_request_rate_kib = server::ServerLimits{}.min_request_rate >> 10;
    size_t max_queue = 16, cache_entries = 16;
    bool no_disk_cache = false;
    std::string api_key;
    std::vector<std::string> allowed_hosts, media_roots;
};

// Turns SIGTERM/SIGINT into a call of `on_signal` on a watcher thread. The handler only
// writes the signal number to a pipe (async-signal-safe); it is a handler rather than a
// blocked mask because libraries (OpenBLAS, OpenMP) start threads before main().
class SignalWatcher {
public:
    SignalWatcher() {
        VIDI_CHECK(pipe2(fds_, O_CLOEXEC) == 0, "cannot create a pipe for signal handling");
        write_fd_ = fds_[1];
        struct sigaction sa = {};
        sa.sa_handler = [](int sig) {
            const unsigned char b = static_cast<unsigned char>(sig);
            [[maybe_unused]] ssize_t n = write(write_fd_, &b, 1);
        };
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, nullptr);
        sigaction(SIGINT, &sa, nullptr);
    }
    void start(std::function<void(int)> on_signal) {
        thread_ = std::thread([this, on_signal] {
            unsigned char sig = 0;
            while (read(fds_[0], &sig, 1) < 0 && errno == EINTR) {
            }
            if (sig != 0) on_signal(sig);
        });
    }
    ~SignalWatcher() {
        stop();
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        close(fds_[0]);
        close(fds_[1]);
    }
    // Ends the watcher thread; after this, on_signal never runs.
    void stop() {
        if (!thread_.joinable()) return;
        const unsigned char zero = 0;  // wakes the reader without a signal
        [[maybe_unused]] ssize_t n = write(fds_[1], &zero, 1);
        thread_.join();
    }

private:
    static inline int write_fd_ = -1;
    int fds_[2] = {-1, -1};
    std::thread thread_;
};

int run_serve(const ServeArgs& a) {
    SignalWatcher signals;
    server::JobQueue queue(a.max_queue);

    EngineOptions eo = a.engine.options;
    eo.media_inputs = MediaInputs::VideoFiles;  // clients' files: local video containers only
    const std::string& model = eo.model_dir;
    // Long work reports progress: a cancelled job (timeout, shutdown) stops there, and a client
    // watching an encode hears it.
    eo.progress = [&queue](const std::string& stage, int64_t done, int64_t total) { queue.progress(stage, done, total); };
    std::fprintf(stderr, "vidi serve: loading %s\n", model.c_str());
    auto engine = Engine::open(eo);

    server::ServerOptions so;
    so.host = a.host;
    so.port = a.port;
    so.limits.max_upload_bytes = a.max_upload_mb << 20;
    so.limits.upload_store_bytes = std::max(a.upload_store_mb, a.max_upload_mb) << 20;  // one upload always fits
    so.limits.max_uploads = a.max_uploads;
    so.limits.connections_per_address = a.connections_per_address;
    so.limits.min_request_rate = a.min_request_rate_kib << 10;
    so.access.api_key = a.api_key;
    so.access.allowed_hosts = a.allowed_hosts;
    so.access.media_roots = a.media_roots;
    so.timeout_s = a.timeout_s;
    so.max_new_tokens = a.engine.generate.max_new_tokens;
    so.max_batch = a.max_batch;
    so.model_key = server::model_cache_key(model);
    so.cache.dir = a.no_disk_cache ? "" : (a.cache_dir.empty() ? server::default_cache_dir() : a.cache_dir);
    so.cache.max_bytes = a.cache_mb << 20;
    so.cache.max_entries = a.cache_entries;
    so.cache.max_disk_bytes = a.disk_cache_mb << 20;
    so.cache.bytes_per_token = engine->media_token_bytes();
    server::Server server(*engine, queue, so);
    const int port = server.bind();

    struct StopWatcherFirst {  // the callback uses `server`: stop watching before it dies
        SignalWatcher& w;
        ~StopWatcherFirst() { w.stop(); }
    } stop_watcher_first{signals};
    std::atomic<bool> serving_done{false};
    signals.start([&](int sig) {
        std::fprintf(stderr, "vidi serve: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        queue.shutdown("the server is shutting down");
        // Repeated: a signal that lands just before the listener starts must still stop it.
        while (!serving_done) {
            server.stop();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    if (a.api_key.empty() && !server::is_loopback_address(a.host))
        std::fprintf(stderr,
                     "vidi serve: WARNING: listening on %s without --api-key: anyone who reaches this port can "
                     "upload videos and run the model (docs/security.md)\n",
                     a.host.c_str());
    std::printf("vidi serve: listening on http://%s:%d (model %s, backend %s, cache %s)\n", a.host.c_str(), port,
                engine->model_name().c_str(), engine->backend_name().c_str(),
                so.cache.dir.empty() ? "memory only" : so.cache.dir.c_str());
    std::fflush(stdout);
    const bool ok = server.run();
    serving_done = true;
    VIDI_CHECK(ok, "the HTTP listener on ", a.host, ":", port, " failed");
    std::fprintf(stderr, "vidi serve: stopped\n");
    return 0;
}

}  // namespace

// Sizes in MiB become bytes (<< 20): bounded so that the shift cannot overflow (2^40 MiB is
// an exbibyte, past any disk or memory).
constexpr int64_t kMostMebibytes = int64_t(1) << 40;

Runner add_serve(CLI::App& app) {
    auto args = std::make_shared<ServeArgs>();
    auto* cmd = app.add_subcommand("serve", "HTTP API and web page: the model loads once, requests queue");
    add_engine_flags(cmd, args->engine);  // --max-new-tokens: the most a request may ask for
    cmd->add_option("--host", args->host, "address to listen on")->capture_default_str();
    cmd->add_option("--port", args->port, "port (0: any free port, printed at start)")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    cmd->add_option("--max-upload-mb", args->max_upload_mb, "largest accepted upload (MiB)")
        ->capture_default_str()
        ->check(integer_in(1, kMostMebibytes, "a size in MiB"));
    cmd->add_option("--upload-store-mb", args->upload_store_mb,
                    "disk for kept uploads (MiB); least recently used go first, never one in use")
        ->capture_default_str()
        ->check(integer_in(1, kMostMebibytes, "a size in MiB"));
    cmd->add_option("--max-uploads", args->max_uploads, "uploads received at once; more get 503")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--max-connections-per-address", args->connections_per_address,
                    "connections served at once from one client address; more get 503 (0: no bound; "
                    "loopback clients, such as a reverse proxy, are not counted)")
        ->capture_default_str()
        ->check(CLI::Range(0, 1 << 20));
    cmd->add_option("--min-request-rate-kib", args->min_request_rate_kib,
                    "requests (headers and bodies) must come at least this fast (KiB/s) after a connection's "
                    "first 20 s of waiting, else 408 (0: no floor; only the time spent waiting for the client counts)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
    cmd->add_option("--api-key", args->api_key,
                    "require 'Authorization: Bearer KEY' on every endpoint but GET /health and the page")
        ->envname("VIDI_API_KEY");
    cmd->add_option("--allowed-host", args->allowed_hosts,
                    "Host header names answered (repeatable; default on a loopback address: localhost, "
                    "127.0.0.1, ::1; else any)");
    cmd->add_option("--media-root", args->media_roots,
                    "directory whose videos clients may name by video_path (repeatable; default: none)")
        ->check(CLI::ExistingDirectory);
    cmd->add_option("--timeout-s", args->timeout_s, "per-request limit, queueing included (s)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--max-batch", args->max_batch,
                    "questions about one video decoded together; later ones wait for a place")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    cmd->add_option("--max-queue", args->max_queue, "requests that may wait; more get 503")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--cache-dir", args->cache_dir, "media-token cache (default $XDG_CACHE_HOME/vidi or ~/.cache/vidi)");
    cmd->add_flag("--no-disk-cache", args->no_disk_cache, "keep encoded videos in memory only");
    cmd->add_option("--cache-mb", args->cache_mb, "memory for encoded videos (MiB, LRU)")
        ->capture_default_str()
        ->check(integer_in(1, kMostMebibytes, "a size in MiB"));
    cmd->add_option("--cache-entries", args->cache_entries, "encoded videos kept in memory (LRU)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    cmd->add_option("--disk-cache-mb", args->disk_cache_mb,
                    "disk for media-token files under --cache-dir (MiB, least recently used go first; 0: no limit)")
        ->capture_default_str()
        ->check(integer_in(0, kMostMebibytes, "a size in MiB"));
    return [args] { return run_serve(*args); };
}

}  // namespace vidi::app
