#include "app/server/server.h"

#include <httplib.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/server/form.h"
#include "app/server/http_error.h"
#include "app/server/upload_store.h"
#include "app/server/video_file.h"
#include "app/server/video_registry.h"
#include "app/server/web_assets.h"
#include "vidi/clips.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::server {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

enum class Task { Retrieval, Vqa };

Task parse_task(const std::string& s) {
    if (s.empty() || s == "retrieval") return Task::Retrieval;
    if (s == "vqa") return Task::Vqa;
    throw HttpError(400, "task must be 'retrieval' or 'vqa', not '" + s + "'");
}

std::string require_question(const Form& form) {
    std::string q = form.get("question");
    if (q.find_first_not_of(" \t\r\n") == std::string::npos) throw HttpError(400, "missing field 'question'");
    return q;
}

// "HH:MM:SS-HH:MM:SS, ...", truncated to whole seconds as the official script prints them
// (the exact seconds are in "ranges"; docs/conformance.md).
std::string ranges_text(const std::vector<TimeRange>& ranges) {
    std::string s;
    for (const auto& r : ranges) s += (s.empty() ? "" : ", ") + format_range(r);
    return s;
}

std::string content_type_for(const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".mp4" || ext == ".m4v") return "video/mp4";
    if (ext == ".webm") return "video/webm";
    if (ext == ".mov") return "video/quicktime";
    if (ext == ".mkv") return "video/x-matroska";
    if (ext == ".ogv") return "video/ogg";
    return "application/octet-stream";
}

// Serves `size` bytes in pieces (httplib answers Range requests from a sized provider).
// `keep_alive` holds whatever must live while the body is sent (a clip, a video's lease).
using ReadAt = std::function<ssize_t(char* buf, size_t n, int64_t offset)>;
void send_bytes(httplib::Response& res, int64_t size, const std::string& type, ReadAt read_at,
                std::shared_ptr<void> keep_alive) {
    res.set_content_provider(static_cast<size_t>(size), type,
                             [read_at, keep_alive](size_t offset, size_t length, httplib::DataSink& sink) {
                                 char buf[1 << 16];
                                 const ssize_t n = read_at(buf, std::min(length, sizeof buf),
                                                           static_cast<int64_t>(offset));
                                 return n > 0 && sink.write(buf, static_cast<size_t>(n));
                             });
}

double parse_seconds(const httplib::Request& req, const char* name) {
    if (!req.has_param(name)) throw HttpError(400, std::string("missing query parameter '") + name + "'");
    const std::string v = req.get_param_value(name);
    try {
        size_t used = 0;
        double d = std::stod(v, &used);
        if (used == v.size() && std::isfinite(d)) return d;
    } catch (const std::exception&) {
    }
    throw HttpError(400, std::string("query parameter '") + name + "' is not a number: '" + v + "'");
}

std::string make_work_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/vidi-serve-XXXXXX";
    VIDI_CHECK(mkdtemp(pattern.data()), "cannot create a temporary directory from ", pattern);
    return pattern;
}

// The worker's part of a request: it owns its inputs and outputs, because a caller that
// timed out stops waiting while the job may still be finishing.
struct QueryJob {
    VideoSource source;
    VideoFile::Use use;  // the file stays in use (never evicted) until the job is done
    std::string question;
    Task task = Task::Retrieval;
    GenerateOptions generate;
    bool answer_wanted = true;  // false: only encode (POST /v1/videos)
    Clock::time_point queued = Clock::now();
    // results
    Answer answer;
    std::shared_ptr<const Video> video;
    std::string cache_source;
    double queue_s = 0, video_s = 0;
};

// The server's choices filled in: canonical media roots, lower-case Host names (the loopback
// names by default on a loopback address).
AccessOptions resolve_access(AccessOptions a, const std::string& bind_host) {
    a.media_roots = media_roots(a.media_roots);
    for (auto& h : a.allowed_hosts) h = host_name(h);
    if (a.allowed_hosts.empty() && is_loopback_address(bind_host)) a.allowed_hosts = loopback_host_names();
    return a;
}

bool has_body(const httplib::Request& req) {
    return req.has_header("Transfer-Encoding") ||
           (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
}

}  // namespace

struct Server::Impl {
    Engine& engine;
    JobQueue& queue;
    ServerOptions opt;
    AccessOptions access;
    std::string model_name, backend_name;
    std::string work_dir;
    bool own_work_dir = false;
    VideoCache cache;
    VideoRegistry registry;
    UploadStore uploads;
    JobQueue hashing;  // host files are hashed here, one at a time, never on HTTP threads
    httplib::Server http;

    Impl(Engine& e, JobQueue& q, ServerOptions o)
        : engine(e),
          queue(q),
          opt(std::move(o)),
          access(resolve_access(opt.access, opt.host)),
          model_name(e.model_name()),
          backend_name(e.backend_name()),
          work_dir(opt.work_dir.empty() ? make_work_dir() : opt.work_dir),
          own_work_dir(opt.work_dir.empty()),
          cache(e, opt.cache, opt.model_key.empty() ? model_name : opt.model_key),
          registry(opt.limits.max_videos),
          uploads(work_dir + "/uploads", opt.limits.upload_store_bytes, opt.limits.max_uploads,
                  opt.limits.max_upload_bytes),
          hashing(opt.limits.hash_queue) {
        fs::create_directories(work_dir);
        uploads.set_on_evict([this](const UploadStore::File& f) {
            for (const auto& id : registry.remove_upload(f))
                std::fprintf(stderr, "vidi serve: video %s evicted from the upload store (--upload-store-mb)\n",
                             id.c_str());
        });
        routes();
    }

    ~Impl() {
        http.stop();
        queue.shutdown("the server is shutting down");  // no job may outlive the cache
        hashing.shutdown("the server is shutting down");
        uploads.set_on_evict(nullptr);
        if (own_work_dir) {
            std::error_code ec;
            fs::remove_all(work_dir, ec);
        }
    }

    // Waits for `work` on a bounded queue (--timeout-s); 503 when it is full or too slow.
    void wait_for(JobQueue& q, std::function<void()> work) {
        auto ticket = q.submit(std::move(work));
        if (!ticket)
            throw HttpError(503, "busy: " + std::to_string(q.waiting()) + " requests are already waiting; retry later");
        const std::string timeout_msg = "timed out after " + std::to_string(opt.timeout_s) + " s (--timeout-s)";
        if (!ticket->wait(std::chrono::seconds(opt.timeout_s), timeout_msg)) throw HttpError(503, timeout_msg);
        ticket->get();
    }

    // The video a request names: an uploaded `video` file or a `video_path` under a media
    // root. Every reason to refuse one is the same "video not available" for the client.
    VideoSource resolve_video(const Form& form) {
        VideoSource src;
        if (form.video && form.has("video_path"))
            throw HttpError(400, "send either a 'video' file or a 'video_path', not both");
        if (form.video) {
            src.file = VideoFile::open_upload(form.video->file);
            src.sha256 = form.video->file->sha256();
            src.name = form.video->filename.empty() ? "upload" + fs::path(src.file->real_path()).extension().string()
                                                    : form.video->filename;
        } else if (form.has("video_path")) {
            src.name = form.get("video_path");
            src.file = VideoFile::open_in_roots(access.media_roots, src.name);
            auto sha = std::make_shared<std::string>();
            wait_for(hashing, [file = src.file, sha] { *sha = file->sha256(); });
            src.sha256 = *sha;
        } else {
            throw HttpError(400, "missing video: send a 'video' file or a 'video_path' field");
        }
        return src;
    }

    // Queues the job on the engine's worker and waits for it (bounded by --timeout-s). A video
    // the engine cannot read is "video not available", whatever FFmpeg said (the log has it).
    void run_job(const std::shared_ptr<QueryJob>& job) {
        Engine* e = &engine;
        VideoCache* c = &cache;
        wait_for(queue, [job, e, c] {
            job->queue_s = seconds_since(job->queued);
            auto t0 = Clock::now();
            VideoCache::Hit hit;
            try {
                hit = c->get(job->source.file->path(), job->source.sha256);
            } catch (const vidi::Error& err) {
                if (mentions_out_of_memory(err.what())) throw;
                throw video_unavailable(job->source.file->real_path() + ": " + err.what());
            }
            job->video = hit.video;
            job->cache_source = hit.source;
            job->video_s = seconds_since(t0);
            if (!job->answer_wanted) return;
            job->answer = job->task == Task::Retrieval ? e->retrieve(*hit.video, job->question, job->generate)
                                                       : e->ask(hit.video.get(), job->question, job->generate);
        });
    }

    json answer_json(const QueryJob& job, double total_s) const {
        const Answer& a = job.answer;
        json ranges = json::array();
        for (const auto& r : a.ranges) ranges.push_back({{"start", r.start}, {"end", r.end}});
        return {
            {"answer", job.task == Task::Retrieval ? ranges_text(a.ranges) : a.text},
            {"text", a.text},
            {"task", job.task == Task::Retrieval ? "retrieval" : "vqa"},
            {"ranges", ranges},
            {"duration", a.duration},
            {"timings",
             {{"queue_s", job.queue_s},
              {"video_s", job.video_s},
              {"video_cache", job.cache_source},
              {"media_s", a.timings.media_s},
              {"prefill_s", a.timings.prefill_s},
              {"generate_s", a.timings.generate_s},
              {"generated_tokens", a.timings.generated_tokens},
              {"total_s", total_s}}},
        };
    }

    void send_json(httplib::Response& res, const json& j, int status = 200) {
        res.status = status;
        res.set_content(j.dump(), "application/json");
    }

    // The optional `max_new_tokens` field: at most the server's --max-new-tokens.
    GenerateOptions generate_options(const Form& form) const {
        GenerateOptions g;
        g.max_new_tokens = opt.max_new_tokens;
        if (!form.has("max_new_tokens")) return g;
        const std::string v = form.get("max_new_tokens");
        int n = 0;
        try {
            size_t used = 0;
            n = std::stoi(v, &used);
            if (used != v.size()) n = 0;
        } catch (const std::exception&) {
        }
        if (n < 1 || n > opt.max_new_tokens)
            throw HttpError(400, "max_new_tokens must be an integer from 1 to " + std::to_string(opt.max_new_tokens) +
                                     ", not '" + v + "'");
        g.max_new_tokens = n;
        return g;
    }

    RegisteredVideo find_video(const httplib::Request& req) {
        auto v = registry.find(req.matches[1]);
        if (!v) throw HttpError(404, "unknown video id '" + std::string(req.matches[1]) + "'");
        return *v;
    }

    // ---- handlers ----

    // Without the key (when one is set) only that the server is up.
    void health(const httplib::Request& req, httplib::Response& res) {
        if (!has_valid_key(access, req)) return send_json(res, {{"status", "ok"}});
        send_json(res, {{"status", "ok"},
                        {"model", model_name},
                        {"family", engine.family_name()},
                        {"backend", backend_name},
                        {"queue", {{"waiting", queue.waiting()}, {"busy", queue.busy()}}},
                        {"cache", {{"entries", cache.entries()}, {"bytes", cache.bytes()}}},
                        {"uploads", {{"files", uploads.files()}, {"bytes", uploads.bytes()}}},
                        {"videos", registry.size()}});
    }

    void inference(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        const auto t0 = Clock::now();
        Form form = read_form(req, reader, opt.limits, uploads);
        auto job = std::make_shared<QueryJob>();
        job->question = require_question(form);
        job->task = parse_task(form.get("task"));
        job->generate = generate_options(form);
        job->source = resolve_video(form);
        job->use = job->source.file->use();
        run_job(job);
        send_json(res, answer_json(*job, seconds_since(t0)));
    }

    void add_video(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        const auto t0 = Clock::now();
        Form form = read_form(req, reader, opt.limits, uploads);
        auto job = std::make_shared<QueryJob>();
        job->source = resolve_video(form);
        job->use = job->source.file->use();
        job->answer_wanted = false;
        run_job(job);
        const Video& v = *job->video;
        std::string id = registry.add(job->source, v.duration());
        send_json(res,
                  {{"id", id},
                   {"name", job->source.name},
                   {"duration", v.duration()},
                   {"frames", v.frames()},
                   {"visual_tokens", v.visual_tokens()},
                   {"audio_tokens", v.audio_tokens()},
                   {"timings",
                    {{"queue_s", job->queue_s},
                     {"video_s", job->video_s},
                     {"video_cache", job->cache_source},
                     {"total_s", seconds_since(t0)}}}});
    }

    void query_video(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        const auto t0 = Clock::now();
        RegisteredVideo v = find_video(req);
        Form form = read_form(req, reader, opt.limits, uploads);
        if (form.video || form.has("video_path"))
            throw HttpError(400, "this video is already registered; send only 'question' and 'task'");
        auto job = std::make_shared<QueryJob>();
        job->question = require_question(form);
        job->task = parse_task(form.get("task"));
        job->generate = generate_options(form);
        job->source = v.source;
        job->use = v.source.file->use();
        run_job(job);
        json j = answer_json(*job, seconds_since(t0));
        j["id"] = v.id;
        send_json(res, j);
    }

    void list_videos(httplib::Response& res) {
        json all = json::array();
        for (const auto& v : registry.list())
            all.push_back({{"id", v.id}, {"name", v.source.name}, {"duration", v.duration}});
        send_json(res, {{"videos", all}});
    }

    void delete_video(const httplib::Request& req, httplib::Response& res) {
        auto v = registry.remove(req.matches[1]);
        if (!v) throw HttpError(404, "unknown video id '" + std::string(req.matches[1]) + "'");
        if (!registry.has_content(v->source.sha256)) cache.forget(v->source.sha256);
        send_json(res, {{"deleted", v->id}});
    }

    void video_file(const httplib::Request& req, httplib::Response& res) {
        RegisteredVideo v = find_video(req);
        auto use = std::make_shared<VideoFile::Use>(v.source.file->use());
        auto file = v.source.file;
        send_bytes(res, file->size(), content_type_for(file->real_path()),
                   [file](char* buf, size_t n, int64_t offset) { return file->read_at(buf, n, offset); }, use);
    }

    void clip(const httplib::Request& req, httplib::Response& res) {
        RegisteredVideo v = find_video(req);
        const TimeRange range{parse_seconds(req, "start"), parse_seconds(req, "end")};
        VideoFile::Use use = v.source.file->use();
        const std::string ext = clip_extension(v.source.file->real_path());
        auto out = std::make_shared<OwnedFile>(unique_path(work_dir, "clip", ext));
        auto clip = export_clip(v.source.file->path(), range, out->path(), MediaInputs::VideoFiles);
        auto in = std::make_shared<std::ifstream>(out->path(), std::ios::binary);
        std::error_code ec;
        const auto size = fs::file_size(out->path(), ec);
        if (ec || !*in) throw HttpError(500, "cannot read the exported clip", out->path());
        char name[96];
        std::snprintf(name, sizeof name, "clip_%.2f-%.2f%s", clip.start, clip.end, ext.c_str());
        send_bytes(res, static_cast<int64_t>(size), content_type_for(out->path()),
                   [in, out](char* buf, size_t n, int64_t offset) -> ssize_t {
                       in->clear();
                       in->seekg(static_cast<std::streamoff>(offset));
                       in->read(buf, static_cast<std::streamsize>(n));
                       return in->gcount();
                   },
                   out);
        res.set_header("Content-Disposition", std::string("attachment; filename=\"") + name + "\"");
        res.set_header("X-Clip-Start", std::to_string(clip.start));
        res.set_header("X-Clip-End", std::to_string(clip.end));
    }

    void asset(const std::string& path, httplib::Response& res) {
        const WebAsset* a = find_web_asset(path);
        if (!a) throw HttpError(404, "no such page: " + path);
        res.set_content(std::string(a->body), std::string(a->content_type).c_str());
    }

    // ---- wiring ----

    template <class F>
    httplib::Server::Handler plain(F f) {
        return [f](const httplib::Request& req, httplib::Response& res) {
            try {
                f(req, res);
            } catch (...) {
                send_current_exception(res);
            }
        };
    }
    // A route that reads a body. Requests with a body skip the guard before routing (it could
    // not read their body), so it runs here. A body the handler left unread (refused before
    // reading) is drained up to drain_bytes, so that the client, still sending, gets the
    // answer; past that the connection closes after it.
    template <class F>
    httplib::Server::HandlerWithContentReader reading(F f) {
        return [this, f](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
            bool used = false;
            const httplib::ContentReader tracked(
                [&](httplib::ContentReceiver receiver) {
                    used = true;
                    return reader(std::move(receiver));
                },
                [&](httplib::MultipartContentHeader header, httplib::ContentReceiver receiver) {
                    used = true;
                    return reader(std::move(header), std::move(receiver));
                });
            try {
                if (auto refused = check_access(access, req)) throw *refused;
                f(req, res, tracked);
            } catch (...) {
                send_current_exception(res);
            }
            if (!used && !drain_body(req, reader, opt.limits)) close_after_response(res);
        };
    }

    // Runs before routing, for every request: how a body may be framed, then (for a request
    // without a body) the Host header and the key. Handled requests never reach a route.
    httplib::Server::HandlerResponse guard(const httplib::Request& req, httplib::Response& res) {
        try {
            if (has_body(req)) {
                if (req.method != "POST") throw HttpError(400, req.method + " requests take no body").closing();
                const std::string te = req.get_header_value("Transfer-Encoding");
                if (!te.empty() && te != "chunked")
                    throw HttpError(501, "Transfer-Encoding '" + te + "' is not supported (only chunked)").closing();
                const std::string ce = req.get_header_value("Content-Encoding");
                if (!ce.empty() && ce != "identity")
                    throw HttpError(415, "Content-Encoding '" + ce + "' is not accepted: send the body as is")
                        .closing();
                return httplib::Server::HandlerResponse::Unhandled;  // checked by reading()
            }
            if (auto refused = check_access(access, req)) throw *refused;
        } catch (...) {
            send_current_exception(res);
            return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
    }

    void routes() {
        const std::string id = "/v1/videos/([^/]+)";
        http.set_pre_routing_handler([this](const auto& req, auto& res) { return guard(req, res); });
        http.Get("/", plain([this](auto&, auto& res) { asset("/index.html", res); }));
        http.Get(R"(/([A-Za-z0-9_-]+\.(html|js|css|svg)))",
                 plain([this](auto& req, auto& res) { asset(req.path, res); }));
        http.Get("/health", plain([this](auto& req, auto& res) { health(req, res); }));
        http.Post("/inference", reading([this](auto& req, auto& res, auto& r) { inference(req, res, r); }));
        http.Get("/v1/videos", plain([this](auto&, auto& res) { list_videos(res); }));
        http.Post("/v1/videos", reading([this](auto& req, auto& res, auto& r) { add_video(req, res, r); }));
        http.Post(id + "/query", reading([this](auto& req, auto& res, auto& r) { query_video(req, res, r); }));
        http.Delete(id, plain([this](auto& req, auto& res) { delete_video(req, res); }));
        http.Get(id + "/file", plain([this](auto& req, auto& res) { video_file(req, res); }));
        http.Get(id + "/clip", plain([this](auto& req, auto& res) { clip(req, res); }));
        // Last: any other POST is read here (counted, drained) rather than into memory by httplib.
        http.Post(".*", reading([](auto&, auto&, auto&) { throw HttpError(404, "not found"); }));

        // httplib's own errors (unknown route, bad request line) get the same JSON body as ours.
        http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (res.body.empty() && res.get_header_value("Connection") != "close")
                send_error(res, res.status, default_error_message(res.status));
        });
        // What read_form counts is the limit; httplib's own check on Content-Length stays above it.
        http.set_payload_max_length(static_cast<size_t>(opt.limits.max_body_bytes() + opt.limits.drain_bytes + 1));
        // Enough threads that requests waiting in the job queue never starve /health.
        const int threads = opt.limits.http_threads;
        http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
        http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
            std::fprintf(stderr, "vidi serve: %s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
        });
    }
};

Server::Server(Engine& engine, JobQueue& queue, ServerOptions options)
    : impl_(std::make_unique<Impl>(engine, queue, std::move(options))) {}

Server::~Server() = default;

int Server::bind() {
    auto& o = impl_->opt;
    int port = o.port;
    if (port == 0) port = impl_->http.bind_to_any_port(o.host);
    else if (!impl_->http.bind_to_port(o.host, port)) port = -1;
    VIDI_CHECK(port > 0, "cannot listen on ", o.host, ":", o.port, " (address in use or not available)");
    return port;
}

bool Server::run() { return impl_->http.listen_after_bind(); }

void Server::stop() { impl_->http.stop(); }

}  // namespace vidi::server
