#include "app/server/server.h"

#include <httplib.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/server/form.h"
#include "app/server/http_error.h"
#include "app/server/sha256.h"
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

// "HH:MM:SS.ss-HH:MM:SS.ss, ..." as the pipeline reads it.
std::string ranges_text(const std::vector<TimeRange>& ranges) {
    std::string s;
    for (const auto& r : ranges) s += (s.empty() ? "" : ", ") + format_range(r, 2);
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

// Serves a file in pieces (httplib answers Range requests from a sized provider).
// `keep_alive` holds whatever must live while the body is sent (a temporary clip).
void send_file(httplib::Response& res, const std::string& path, std::shared_ptr<void> keep_alive = nullptr) {
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) throw HttpError(404, "cannot read " + path);
    auto in = std::make_shared<std::ifstream>(path, std::ios::binary);
    if (!*in) throw HttpError(404, "cannot read " + path);
    res.set_content_provider(
        static_cast<size_t>(size), content_type_for(path),
        [in, keep_alive](size_t offset, size_t length, httplib::DataSink& sink) {
            char buf[1 << 16];
            in->clear();
            in->seekg(static_cast<std::streamoff>(offset));
            size_t n = std::min(length, sizeof buf);
            in->read(buf, static_cast<std::streamsize>(n));
            if (in->gcount() <= 0) return false;
            return sink.write(buf, static_cast<size_t>(in->gcount()));
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

}  // namespace

struct Server::Impl {
    Engine& engine;
    JobQueue& queue;
    ServerOptions opt;
    std::string model_name, family_name, backend_name;
    std::string work_dir;
    bool own_work_dir = false;
    VideoCache cache;
    VideoRegistry registry;
    httplib::Server http;

    Impl(Engine& e, JobQueue& q, ServerOptions o)
        : engine(e),
          queue(q),
          opt(std::move(o)),
          model_name(e.model_name()),
          family_name(e.family_name()),
          backend_name(e.backend_name()),
          work_dir(opt.work_dir.empty() ? make_work_dir() : opt.work_dir),
          own_work_dir(opt.work_dir.empty()),
          cache(e, opt.cache, opt.model_key.empty() ? model_name : opt.model_key) {
        fs::create_directories(work_dir);
        routes();
    }

    ~Impl() {
        http.stop();
        queue.shutdown("the server is shutting down");  // no job may outlive the cache
        if (own_work_dir) {
            std::error_code ec;
            fs::remove_all(work_dir, ec);
        }
    }

    FormLimits limits() const { return FormLimits{opt.max_upload_bytes, 1 << 16}; }

    // The video a request names: an uploaded `video` file or a `video_path` on the host.
    VideoSource resolve_video(const Form& form) {
        VideoSource src;
        if (form.video && form.has("video_path"))
            throw HttpError(400, "send either a 'video' file or a 'video_path', not both");
        if (form.video) {
            if (form.video->bytes == 0) throw HttpError(400, "the uploaded video is empty");
            src.path = form.video->file->path();
            src.name = form.video->filename.empty() ? "upload" + fs::path(src.path).extension().string()
                                                    : form.video->filename;
            src.upload = form.video->file;
        } else if (form.has("video_path")) {
            src.path = src.name = form.get("video_path");
            std::error_code ec;
            if (!fs::is_regular_file(src.path, ec)) throw HttpError(400, "video_path '" + src.path + "' is not a file");
        } else {
            throw HttpError(400, "missing video: send a 'video' file or a 'video_path' field");
        }
        src.sha256 = sha256_file(src.path);
        return src;
    }

    // Queues the job and waits for it (bounded by --timeout-s).
    void run_job(const std::shared_ptr<QueryJob>& job) {
        Engine* e = &engine;
        VideoCache* c = &cache;
        auto ticket = queue.submit([job, e, c] {
            job->queue_s = seconds_since(job->queued);
            auto t0 = Clock::now();
            auto hit = c->get(job->source.path, job->source.sha256);
            job->video = hit.video;
            job->cache_source = hit.source;
            job->video_s = seconds_since(t0);
            if (!job->answer_wanted) return;
            job->answer = job->task == Task::Retrieval ? e->retrieve(*hit.video, job->question, job->generate)
                                                       : e->ask(hit.video.get(), job->question, job->generate);
        });
        if (!ticket)
            throw HttpError(503, "busy: " + std::to_string(queue.waiting()) +
                                     " requests are already waiting; retry later");
        const std::string timeout_msg = "timed out after " + std::to_string(opt.timeout_s) + " s (--timeout-s)";
        if (!ticket->wait(std::chrono::seconds(opt.timeout_s), timeout_msg)) throw HttpError(503, timeout_msg);
        ticket->get();
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

    void health(httplib::Response& res) {
        send_json(res, {{"status", "ok"},
                        {"model", model_name},
                        {"family", family_name},
                        {"backend", backend_name},
                        {"queue", {{"waiting", queue.waiting()}, {"busy", queue.busy()}}},
                        {"cache", {{"entries", cache.entries()}, {"bytes", cache.bytes()}}},
                        {"videos", registry.list().size()}});
    }

    void inference(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        const auto t0 = Clock::now();
        Form form = read_form(req, reader, limits(), work_dir);
        auto job = std::make_shared<QueryJob>();
        job->question = require_question(form);
        job->task = parse_task(form.get("task"));
        job->generate = generate_options(form);
        job->source = resolve_video(form);
        run_job(job);
        send_json(res, answer_json(*job, seconds_since(t0)));
    }

    void add_video(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        const auto t0 = Clock::now();
        Form form = read_form(req, reader, limits(), work_dir);
        auto job = std::make_shared<QueryJob>();
        job->source = resolve_video(form);
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
        Form form = read_form(req, reader, limits(), work_dir);
        if (form.video || form.has("video_path"))
            throw HttpError(400, "this video is already registered; send only 'question' and 'task'");
        auto job = std::make_shared<QueryJob>();
        job->question = require_question(form);
        job->task = parse_task(form.get("task"));
        job->generate = generate_options(form);
        job->source = v.source;
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
        send_file(res, v.source.path, v.source.upload);
    }

    void clip(const httplib::Request& req, httplib::Response& res) {
        RegisteredVideo v = find_video(req);
        const TimeRange range{parse_seconds(req, "start"), parse_seconds(req, "end")};
        const std::string ext = clip_extension(v.source.path);
        auto file = std::make_shared<OwnedFile>(unique_path(work_dir, "clip", ext));
        auto clip = export_clip(v.source.path, range, file->path());
        char name[96];
        std::snprintf(name, sizeof name, "clip_%.2f-%.2f%s", clip.start, clip.end, ext.c_str());
        send_file(res, file->path(), file);
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
    template <class F>
    httplib::Server::HandlerWithContentReader reading(F f) {
        return [f](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
            try {
                f(req, res, reader);
            } catch (...) {
                send_current_exception(res);
            }
        };
    }

    void routes() {
        const std::string id = "/v1/videos/([^/]+)";
        http.Get("/", plain([this](auto&, auto& res) { asset("/index.html", res); }));
        http.Get(R"(/([A-Za-z0-9_-]+\.(html|js|css|svg)))",
                 plain([this](auto& req, auto& res) { asset(req.path, res); }));
        http.Get("/health", plain([this](auto&, auto& res) { health(res); }));
        http.Post("/inference", reading([this](auto& req, auto& res, auto& r) { inference(req, res, r); }));
        http.Get("/v1/videos", plain([this](auto&, auto& res) { list_videos(res); }));
        http.Post("/v1/videos", reading([this](auto& req, auto& res, auto& r) { add_video(req, res, r); }));
        http.Post(id + "/query", reading([this](auto& req, auto& res, auto& r) { query_video(req, res, r); }));
        http.Delete(id, plain([this](auto& req, auto& res) { delete_video(req, res); }));
        http.Get(id + "/file", plain([this](auto& req, auto& res) { video_file(req, res); }));
        http.Get(id + "/clip", plain([this](auto& req, auto& res) { clip(req, res); }));

        // httplib's own errors (unknown route, 413 from the payload limit, bad request
        // line) get the same JSON body as ours.
        http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (res.body.empty())
                send_error(res, res.status, default_error_message(res.status));
        });
        http.set_payload_max_length(static_cast<size_t>(opt.max_upload_bytes + FormLimits::kEnvelopeBytes));
        // Enough threads that requests waiting in the job queue never starve /health.
        http.new_task_queue = [] { return new httplib::ThreadPool(32); };
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
