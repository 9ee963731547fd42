// The server's state and handlers, shared by server.cpp (the native API, wiring) and
// chat_routes.cpp (the OpenAI-compatible endpoints). Not part of the server's interface.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "app/server/batcher.h"
#include "app/server/form.h"
#include "app/server/guarded_http.h"
#include "app/server/log_limit.h"
#include "app/server/metrics.h"
#include "app/server/server.h"
#include "app/server/upload_store.h"
#include "app/server/video_registry.h"

namespace vidi::server {

struct Server::Impl {
    Engine& engine;
    JobQueue& queue;
    ServerOptions opt;
    AccessOptions access;
    std::string model_name, backend_name;
    int64_t started_at;  // Unix time, for /v1/models
    std::string work_dir;
    bool own_work_dir = false;
    VideoCache cache;
    VideoRegistry registry;
    UploadStore uploads;
    JobQueue hashing;  // host files are hashed here, one at a time, never on HTTP threads
    // Digests of host files by VideoFile::identity(): a file named again is not read again
    // (a multi-GB video re-hashed on every request held the one hashing worker).
    std::mutex digests_mu;
    std::unordered_map<std::string, std::string> digests;
    // Clips on disk now: exported, or being sent (a clip lives until its download ends).
    std::shared_ptr<std::atomic<int>> clips_alive = std::make_shared<std::atomic<int>>(0);
    Metrics metrics;
    LogLimit refusal_log{20};  // lines a second about refused connections (all are in /metrics)
    Batcher batcher;
    GuardedHttpServer http;

    Impl(Engine& e, JobQueue& q, ServerOptions o);
    ~Impl();

    Clock::time_point deadline_from(Clock::time_point start) const { return start + std::chrono::seconds(opt.timeout_s); }
    std::string timeout_message() const;

    // Waits for `work` on a bounded queue (--timeout-s); 503 when it is full or too slow.
    void wait_for(JobQueue& q, std::function<void()> work);
    // A video by upload, or by a path under a media root (hashed on the hashing worker).
    VideoSource upload_source(const Upload& upload);
    VideoSource path_source(const std::string& path);
    VideoSource resolve_video(const Form& form);
    // Waits for a queued question's whole answer, or with `Await::first_news` for its first
    // token, error or end (a stream's status is settled then), until --timeout-s after it
    // was queued (503); a client that closed its connection cancels it (499).
    enum class Await { answer, first_news };
    void answer(const std::shared_ptr<QueryTicket>& ticket, Await until = Await::answer);
    std::shared_ptr<QueryTicket> submit_question(VideoSource source, Question q);
    nlohmann::json timings_json(const QueryRequest& r, double total_s) const;
    nlohmann::json answer_json(const QueryRequest& r, double total_s) const;
    GenerateOptions generate_options(const Form& form) const;
    RegisteredVideo find_video(const httplib::Request& req);
    void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200);
    void refresh_memory();  // on the worker: GPU memory for /metrics

    // Native API (server.cpp).
    void health(const httplib::Request& req, httplib::Response& res);
    void metrics_page(httplib::Response& res);
    void inference(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
    void add_video(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
    void query_video(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
    void list_videos(httplib::Response& res);
    void delete_video(const httplib::Request& req, httplib::Response& res);
    void video_file(const httplib::Request& req, httplib::Response& res);
    void clip(const httplib::Request& req, httplib::Response& res);
    void asset(const std::string& path, httplib::Response& res);

    // OpenAI-compatible API (chat_routes.cpp).
    void chat_completions(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader);
    void models(httplib::Response& res);
    void model(const httplib::Request& req, httplib::Response& res);
    VideoSource video_from_url(const std::string& url, const Form& form, std::string& video_id);

    // Wiring (server.cpp).
    template <class F>
    httplib::Server::Handler plain(F f);
    template <class F>
    httplib::Server::HandlerWithContentReader reading(F f);
    httplib::Server::HandlerResponse guard(const httplib::Request& req, httplib::Response& res);
    void routes();
};

}  // namespace vidi::server
