#include <stdlib.h>
#include <strings.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "app/server/connection_pool.h"
#include "app/server/http_error.h"
#include "app/server/openai.h"
#include "app/server/server_impl.h"
#include "app/server/sse.h"
#include "app/server/text.h"
#include "app/server/video_file.h"
#include "app/server/web_assets.h"
#include "vidi/clips.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::server {
namespace {

// How often a request waiting for its answer looks whether its client is still there.
constexpr auto kClientCheck = std::chrono::milliseconds(200);

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Task parse_task(const std::string& s) {
    if (s.empty() || s == "retrieval") return Task::retrieval;
    if (s == "vqa") return Task::question;
    throw HttpError(400, "task must be 'retrieval' or 'vqa', not '" + brief_text(s) + "'");
}

std::string require_question(const Form& form) {
    std::string q = form.get("question");
    if (q.find_first_not_of(" \t\r\n") == std::string::npos) throw HttpError(400, "missing field 'question'");
    return q;
}

std::string content_type_for(const std::string& path) {
    const std::string ext = lower(fs::path(path).extension().string());
    if (ext == ".mp4" || ext == ".m4v") return "video/mp4";
    if (ext == ".webm") return "video/webm";
    if (ext == ".mov") return "video/quicktime";
    if (ext == ".mkv") return "video/x-matroska";
    if (ext == ".ogv") return "video/ogg";
    return "application/octet-stream";
}

// httplib 0.11 answers a Range header by itself, after the handler, on any body (a 404 as
// ten multipart copies of itself), and trusts it: 300 copies of a whole file in one request
// ("bytes=0-,0-,…": a 121 MB answer to a 3 KB header; thousands of copies of a long video fit
// the 8 KiB header line), an offset past the end (a 206 whose Content-Length is 2^64 - 10^8),
// an end past it (a Content-Length the body never reaches). So the guard drops every
// request's ranges, and the two routes that serve media put back what they settle here, with
// the size known: several ranges are ignored (the whole file, 200, as RFC 9110 allows;
// browsers' players ask for one), an end past the file is clamped to it, a start past it is
// 416. httplib hands handlers a const view of the Request it owns (a mutable object), so
// writing its `ranges` through const_cast is well defined.
httplib::Ranges& ranges_of(const httplib::Request& req) { return const_cast<httplib::Ranges&>(req.ranges); }

// Puts back the Range header's one range inside `size` bytes (none: the whole file);
// false: 416 (the ranges left empty).
bool settle_ranges(const httplib::Request& req, int64_t size) {
    httplib::Ranges& ranges = ranges_of(req);
    ranges.clear();
    const std::string header = req.get_header_value("Range");
    if (header.empty() || !httplib::detail::parse_range_header(header, ranges) || ranges.size() > 1) {
        ranges.clear();  // httplib already answered 416 to a header it cannot parse
        return true;
    }
    auto& [first, last] = ranges.front();  // -1: absent ("-500": the last 500 bytes)
    if (first < 0) {                        // a suffix: at most the whole file
        if (last <= 0 || size == 0) return ranges.clear(), false;
        if (last > size) first = 0, last = size - 1;
        return true;
    }
    if (first >= size) return ranges.clear(), false;
    if (last >= size) last = size - 1;
    return true;
}

// Serves `size` bytes in pieces (httplib answers Range requests from a sized provider).
// `keep_alive` holds whatever must live while the body is sent (a clip, a video's lease).
using ReadAt = std::function<ssize_t(char* buf, size_t n, int64_t offset)>;
void send_bytes(const httplib::Request& req, httplib::Response& res, int64_t size, const std::string& type,
                ReadAt read_at, std::shared_ptr<void> keep_alive) {
    if (!settle_ranges(req, size)) {
        send_error(res, 416, "the byte range lies outside the file's " + std::to_string(size) + " bytes");
        res.set_header("Content-Range", "bytes */" + std::to_string(size));
        return;
    }
    // Bytes a client uploaded: never run as a page in the server's origin, whatever they hold.
    res.set_header("Content-Security-Policy", "sandbox");
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
    throw HttpError(400, std::string("query parameter '") + name + "' is not a number: '" + brief_text(v) + "'");
}

std::string make_work_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/vidi-serve-XXXXXX";
    VIDI_CHECK(mkdtemp(pattern.data()), "cannot create a temporary directory from ", pattern);
    return pattern;
}

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

// A client that asks for an event stream: `Accept: text/event-stream`, or `?stream=1`.
bool wants_events(const httplib::Request& req) {
    if (req.get_header_value("Accept").find("text/event-stream") != std::string::npos) return true;
    const std::string v = req.get_param_value("stream");
    return v == "1" || v == "true";
}

// The engine's progress during a registration, as the event stream reports it: the latest
// report of each stage, and an estimate of the time left from the decoded frames.
class EncodeProgress {
public:
    void report(const std::string& stage, int64_t done, int64_t total) {
        std::lock_guard lock(mu_);
        if (stage == "frames" && !frames_start_) frames_start_ = Clock::now();
        stages_[stage] = {done, total};
        ++version_;
    }
    uint64_t version() const {
        std::lock_guard lock(mu_);
        return version_;
    }
    nlohmann::json snapshot(Clock::time_point t0) const {
        std::lock_guard lock(mu_);
        nlohmann::json j = {{"elapsed_s", seconds_since(t0)}};
        for (const auto& [stage, dt] : stages_) j[stage] = {{"done", dt.first}, {"total", dt.second}};
        auto f = stages_.find("frames");
        if (f != stages_.end() && frames_start_ && f->second.first > 0 && f->second.second > 0) {
            const double frac = static_cast<double>(f->second.first) / static_cast<double>(f->second.second);
            j["eta_s"] = seconds_since(*frames_start_) * (1 - frac) / frac;
        }
        return j;
    }

private:
    mutable std::mutex mu_;
    std::map<std::string, std::pair<int64_t, int64_t>> stages_;
    std::optional<Clock::time_point> frames_start_;
    uint64_t version_ = 0;
};

}  // namespace

Server::Impl::Impl(Engine& e, JobQueue& q, ServerOptions o)
    : engine(e),
      queue(q),
      opt(std::move(o)),
      access(resolve_access(opt.access, opt.host)),
      model_name(e.model_name()),
      backend_name(e.backend_name()),
      started_at(static_cast<int64_t>(std::time(nullptr))),
      work_dir(opt.work_dir.empty() ? make_work_dir() : opt.work_dir),
      own_work_dir(opt.work_dir.empty()),
      cache(e, opt.cache, opt.model_key.empty() ? model_name : opt.model_key),
      registry(opt.limits.max_videos),
      uploads(work_dir + "/uploads", opt.limits.upload_store_bytes, opt.limits.max_uploads,
              opt.limits.max_upload_bytes),
      hashing(opt.limits.hash_queue),
      batcher(e, q, cache, metrics, opt.max_batch) {
    fs::create_directories(work_dir);
    uploads.set_on_evict([this](const UploadStore::File& f) {
        for (const auto& id : registry.remove_upload(f))
            std::fprintf(stderr, "vidi serve: video %s evicted from the upload store (--upload-store-mb)\n",
                         id.c_str());
    });
    routes();
}

Server::Impl::~Impl() {
    http.stop();
    queue.shutdown("the server is shutting down");  // no job may outlive the cache
    hashing.shutdown("the server is shutting down");
    uploads.set_on_evict(nullptr);
    if (own_work_dir) {
        std::error_code ec;
        fs::remove_all(work_dir, ec);
    }
}

std::string Server::Impl::timeout_message() const {
    return "timed out after " + std::to_string(opt.timeout_s) + " s (--timeout-s)";
}

void Server::Impl::wait_for(JobQueue& q, std::function<void()> work) {
    auto ticket = q.submit(std::move(work));
    if (!ticket)
        throw HttpError(503, "busy: " + std::to_string(q.waiting()) + " requests are already waiting; retry later");
    if (!ticket->wait(std::chrono::seconds(opt.timeout_s), timeout_message())) throw HttpError(503, timeout_message());
    ticket->get();
}

VideoSource Server::Impl::upload_source(const Upload& upload) {
    VideoSource src;
    src.file = VideoFile::open_upload(upload.file);
    src.sha256 = upload.file->sha256();
    src.name = upload.filename.empty() ? "upload" + fs::path(src.file->real_path()).extension().string()
                                       : utf8_text(upload.filename);
    return src;
}

constexpr size_t kMaxDigests = 4096;

VideoSource Server::Impl::path_source(const std::string& path) {
    VideoSource src;
    src.name = utf8_text(path);
    src.file = VideoFile::open_in_roots(access.media_roots, path);
    {
        std::lock_guard lock(digests_mu);
        if (auto it = digests.find(src.file->identity()); it != digests.end()) {
            src.sha256 = it->second;
            metrics.host_file_digest(true);
            return src;
        }
    }
    auto sha = std::make_shared<std::string>();
    // Hashing stops at the next MiB once the request has given up (its deadline passed).
    wait_for(hashing, [this, file = src.file, sha] {
        *sha = file->sha256([this](int64_t done, int64_t total) { hashing.progress("hashing", done, total); });
    });
    src.sha256 = *sha;
    metrics.host_file_digest(false);
    std::lock_guard lock(digests_mu);
    if (digests.size() >= kMaxDigests) digests.clear();  // a bound, not a policy: hashing again is only slower
    digests[src.file->identity()] = src.sha256;
    return src;
}

// The video a request names: an uploaded `video` file or a `video_path` under a media
// root. Every reason to refuse one is the same "video not available" for the client.
VideoSource Server::Impl::resolve_video(const Form& form) {
    if (form.video && form.has("video_path"))
        throw HttpError(400, "send either a 'video' file or a 'video_path', not both");
    if (form.video) return upload_source(*form.video);
    if (form.has("video_path")) return path_source(form.get("video_path"));
    throw HttpError(400, "missing video: send a 'video' file or a 'video_path' field");
}

std::shared_ptr<QueryTicket> Server::Impl::submit_question(VideoSource source, Question q) {
    engine.check_question(q, source.file != nullptr);  // a prompt past the context: 400 before any encode
    auto r = std::make_shared<QueryRequest>();
    if (source.file) r->use = source.file->use();
    r->source = std::move(source);
    r->question = std::move(q);
    return batcher.submit(r);
}

// A request that times out leaves its batch.
void Server::Impl::answer(const std::shared_ptr<QueryTicket>& ticket, Await until) {
    const auto deadline = deadline_from(ticket->request().queued);
    for (uint64_t seen = 0;;) {
        if (ticket->wait_newer(seen, std::min(deadline, Clock::now() + kClientCheck))) {
            const QueryTicket::State st = ticket->state();
            if (st.error) std::rethrow_exception(st.error);
            if (st.finished || until == Await::first_news) return;
            seen = st.version;
        } else if (Clock::now() >= deadline) {
            ticket->cancel(timeout_message());
            throw HttpError(503, timeout_message());
        }
        // A client that closed its connection will not read the answer: its row leaves the
        // batch (or the queue) instead of decoding up to max_new_tokens for nobody.
        if (client_gone()) {
            ticket->cancel(kClientWentAway);
            throw HttpError(kClientClosed, kClientWentAway);
        }
    }
}

nlohmann::json Server::Impl::timings_json(const QueryRequest& r, double total_s) const {
    const Answer& a = r.answer;
    return {{"queue_s", r.queue_s},
            {"video_s", r.video_s},
            {"video_cache", r.cache_source},
            {"media_s", a.timings.media_s},
            {"prefill_s", a.timings.prefill_s},
            {"prefill_rows", a.timings.prefill_rows},
            {"generate_s", a.timings.generate_s},
            {"generated_tokens", a.timings.generated_tokens},
            {"total_s", total_s}};
}

json Server::Impl::answer_json(const QueryRequest& r, double total_s) const {
    const Answer& a = r.answer;
    const bool retrieval = r.question.task == Task::retrieval;
    json ranges = json::array();
    for (const auto& range : a.ranges) ranges.push_back({{"start", range.start}, {"end", range.end}});
    return {
        {"answer", retrieval ? ranges_text(a.ranges) : a.text},
        {"text", a.text},
        {"task", retrieval ? "retrieval" : "vqa"},
        {"token_ids", a.token_ids},
        {"ranges", ranges},
        {"duration", a.duration},
        {"timings", timings_json(r, total_s)},
    };
}

void Server::Impl::send_json(httplib::Response& res, const json& j, int status) {
    res.status = status;
    res.set_content(json_text(j), "application/json");
}

// The optional `max_new_tokens` field: at most the server's --max-new-tokens.
GenerateOptions Server::Impl::generate_options(const Form& form) const {
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
                                 ", not '" + brief_text(v) + "'");
    g.max_new_tokens = n;
    return g;
}

RegisteredVideo Server::Impl::find_video(const httplib::Request& req) {
    auto v = registry.find(req.matches[1]);
    if (!v) throw HttpError(404, "unknown video id '" + brief_text(req.matches[1]) + "'");
    return *v;
}

void Server::Impl::refresh_memory() {
    const Engine::MemoryUse m = engine.memory_use();
    metrics.gpu_memory(m.in_use, m.limit);
}

// ---- handlers ----

// Without the key (when one is set) only that the server is up.
void Server::Impl::health(const httplib::Request& req, httplib::Response& res) {
    if (!has_valid_key(access, req)) return send_json(res, {{"status", "ok"}});
    send_json(res, {{"status", "ok"},
                    {"model", model_name},
                    {"family", engine.family_name()},
                    {"backend", backend_name},
                    {"queue", {{"waiting", queue.waiting() + batcher.waiting()}, {"busy", queue.busy()}}},
                    {"cache", {{"entries", cache.entries()}, {"bytes", cache.bytes()}}},
                    {"uploads", {{"files", uploads.files()}, {"bytes", uploads.bytes()}}},
                    {"videos", registry.size()}});
}

void Server::Impl::metrics_page(httplib::Response& res) {
    LiveCounts live;
    live.queue_waiting = queue.waiting() + batcher.waiting();
    live.busy = queue.busy();
    live.videos = registry.size();
    live.cache_entries = cache.entries();
    live.cache_bytes = cache.bytes();
    live.upload_bytes = uploads.bytes();
    res.set_content(metrics.render(live), "text/plain; version=0.0.4; charset=utf-8");
}

void Server::Impl::inference(const httplib::Request& req, httplib::Response& res,
                             const httplib::ContentReader& reader) {
    const auto t0 = Clock::now();
    Form form = read_form(req, reader, opt.limits, uploads);
    Question q{require_question(form), parse_task(form.get("task")), generate_options(form)};
    auto ticket = submit_question(resolve_video(form), std::move(q));
    answer(ticket);
    send_json(res, answer_json(ticket->request(), seconds_since(t0)));
}

void Server::Impl::add_video(const httplib::Request& req, httplib::Response& res,
                             const httplib::ContentReader& reader) {
    const auto t0 = Clock::now();
    Form form = read_form(req, reader, opt.limits, uploads);
    // The worker's part owns what it reads and writes: a caller that timed out stops
    // waiting while the job may still be finishing.
    struct Job {
        VideoSource source;
        VideoFile::Use use;  // never evicted while the job runs
        Clock::time_point queued = Clock::now();
        std::shared_ptr<const Video> video;
        std::string cache_source;
        double queue_s = 0, video_s = 0;
        EncodeProgress progress;
    };
    auto job = std::make_shared<Job>();
    job->source = resolve_video(form);
    job->use = job->source.file->use();
    Engine* e = &engine;
    VideoCache* c = &cache;
    Metrics* m = &metrics;
    auto work = [job, e, c, m] {
        job->queue_s = seconds_since(job->queued);
        const auto t1 = Clock::now();
        VideoCache::Hit hit;
        try {
            hit = c->get(job->source.file->path(), job->source.sha256);
        } catch (const vidi::Error& err) {
            if (mentions_out_of_memory(err.what())) throw;
            throw video_unavailable(job->source.file->real_path() + ": " + err.what());
        }
        job->video = hit.video;
        job->cache_source = hit.source;
        job->video_s = seconds_since(t1);
        m->video_lookup(hit.source, job->video_s);
        const Engine::MemoryUse mem = e->memory_use();
        m->gpu_memory(mem.in_use, mem.limit);
    };
    // Registers the encoded video; the answer's body.
    auto registered = [this, job, t0] {
        const Video& v = *job->video;
        const std::string id = registry.add(job->source, v.duration());
        return json{{"id", id},
                    {"name", job->source.name},
                    {"duration", v.duration()},
                    {"frames", v.frames()},
                    {"visual_tokens", v.visual_tokens()},
                    {"audio_tokens", v.audio_tokens()},
                    {"timings",
                     {{"queue_s", job->queue_s},
                      {"video_s", job->video_s},
                      {"video_cache", job->cache_source},
                      {"total_s", seconds_since(t0)}}}};
    };
    if (!wants_events(req)) {
        wait_for(queue, work);
        // Nobody would learn the id: the encoding stays cached for the client's retry.
        if (client_gone()) throw HttpError(kClientClosed, kClientWentAway);
        return send_json(res, registered());
    }
    // Progress as server-sent events: "progress" while the video is decoded and encoded,
    // then "video" (the registration) or "error" ({"error", "status"}).
    std::shared_ptr<JobQueue::Ticket> ticket =
        queue.submit(work, [job](const std::string& stage, int64_t done, int64_t total) {
            job->progress.report(stage, done, total);
        });
    if (!ticket)
        throw HttpError(503, "busy: " + std::to_string(queue.waiting()) + " requests are already waiting; retry later");
    event_stream_headers(res);
    const auto deadline = deadline_from(job->queued);
    const std::string timeout = timeout_message();
    res.set_chunked_content_provider(
        "text/event-stream",
        [ticket, job, registered, deadline, timeout, t0](size_t, httplib::DataSink& sink) {
            uint64_t seen = 0;
            bool timed_out = false;
            while (!ticket->done_within(std::chrono::milliseconds(100))) {
                if (Clock::now() >= deadline) {
                    ticket->cancel(timeout);
                    timed_out = true;
                    break;
                }
                const uint64_t v = job->progress.version();
                const bool alive = v != seen ? write_event(sink, json_text(job->progress.snapshot(t0)), "progress")
                                             : write_comment(sink, "working");
                seen = v;
                if (!alive) {
                    ticket->cancel(kClientWentAway);
                    return false;
                }
            }
            if (job->progress.version() != seen &&
                !write_event(sink, json_text(job->progress.snapshot(t0)), "progress"))
                return false;  // the last reports, then the outcome
            std::string data, event = "video";
            try {
                if (timed_out) throw HttpError(503, timeout);
                ticket->get();
                data = json_text(registered());
            } catch (...) {
                const auto [status, message] = current_exception_status();
                event = "error";
                data = json_text(json{{"error", message}, {"status", status}});
            }
            write_event(sink, data, event);
            sink.done();
            return true;
        },
        [ticket](bool ok) {
            if (!ok) ticket->cancel(kClientWentAway);
        });
}

void Server::Impl::query_video(const httplib::Request& req, httplib::Response& res,
                               const httplib::ContentReader& reader) {
    const auto t0 = Clock::now();
    RegisteredVideo v = find_video(req);
    Form form = read_form(req, reader, opt.limits, uploads);
    if (form.video || form.has("video_path"))
        throw HttpError(400, "this video is already registered; send only 'question' and 'task'");
    Question q{require_question(form), parse_task(form.get("task")), generate_options(form)};
    auto ticket = submit_question(v.source, std::move(q));
    answer(ticket);
    json j = answer_json(ticket->request(), seconds_since(t0));
    j["id"] = v.id;
    send_json(res, j);
}

void Server::Impl::list_videos(httplib::Response& res) {
    json all = json::array();
    for (const auto& v : registry.list()) all.push_back({{"id", v.id}, {"name", v.source.name}, {"duration", v.duration}});
    send_json(res, {{"videos", all}});
}

void Server::Impl::delete_video(const httplib::Request& req, httplib::Response& res) {
    auto v = registry.remove(req.matches[1]);
    if (!v) throw HttpError(404, "unknown video id '" + brief_text(req.matches[1]) + "'");
    if (!registry.has_content(v->source.sha256)) cache.forget(v->source.sha256);
    send_json(res, {{"deleted", v->id}});
}

void Server::Impl::video_file(const httplib::Request& req, httplib::Response& res) {
    RegisteredVideo v = find_video(req);
    auto use = std::make_shared<VideoFile::Use>(v.source.file->use());
    auto file = v.source.file;
    send_bytes(req, res, file->size(), content_type_for(file->real_path()),
               [file](char* buf, size_t n, int64_t offset) { return file->read_at(buf, n, offset); }, use);
}

void Server::Impl::clip(const httplib::Request& req, httplib::Response& res) {
    RegisteredVideo v = find_video(req);
    const TimeRange range{parse_seconds(req, "start"), parse_seconds(req, "end")};
    // Each clip is a copy of part of the video on the server's disk until its download ends:
    // only so many at once (a client that never reads holds its clip's bytes meanwhile).
    if (clips_alive->fetch_add(1) >= opt.limits.max_clips) {
        --*clips_alive;
        throw HttpError(503, "busy: " + std::to_string(opt.limits.max_clips) + " clips are being exported or sent; retry later");
    }
    auto slot = std::shared_ptr<void>(nullptr, [alive = clips_alive](void*) { --*alive; });
    VideoFile::Use use = v.source.file->use();
    const std::string ext = clip_extension(v.source.file->real_path());
    auto out = std::make_shared<OwnedFile>(unique_path(work_dir, "clip", ext));
    // The file is read through its descriptor (/proc/self/fd/N): errors name the video by id
    // instead, and the server's own work path stays out of the answer.
    ExportedClip clip;
    try {
        clip = export_clip(v.source.file->path(), range, out->path(), MediaInputs::VideoFiles);
    } catch (const vidi::Error& e) {
        std::string why = e.what();
        auto replace_all = [&why](const std::string& from, const std::string& to) {
            for (size_t at = 0; (at = why.find(from, at)) != std::string::npos; at += to.size()) why.replace(at, from.size(), to);
        };
        replace_all(v.source.file->path(), "video " + v.id);
        replace_all(out->path(), "the clip");
        throw HttpError(400, why, why == e.what() ? "" : e.what());
    }
    auto in = std::make_shared<std::ifstream>(out->path(), std::ios::binary);
    std::error_code ec;
    const auto size = fs::file_size(out->path(), ec);
    if (ec || !*in) throw HttpError(500, "cannot read the exported clip", out->path());
    char name[96];
    std::snprintf(name, sizeof name, "clip_%.2f-%.2f%s", clip.start, clip.end, ext.c_str());
    send_bytes(req, res, static_cast<int64_t>(size), content_type_for(out->path()),
               [in, out](char* buf, size_t n, int64_t offset) -> ssize_t {
                   in->clear();
                   in->seekg(static_cast<std::streamoff>(offset));
                   in->read(buf, static_cast<std::streamsize>(n));
                   return in->gcount();
               },
               std::make_shared<std::pair<std::shared_ptr<OwnedFile>, std::shared_ptr<void>>>(out, slot));
    res.set_header("Content-Disposition", std::string("attachment; filename=\"") + name + "\"");
    res.set_header("X-Clip-Start", std::to_string(clip.start));
    res.set_header("X-Clip-End", std::to_string(clip.end));
}

void Server::Impl::asset(const std::string& path, httplib::Response& res) {
    const WebAsset* a = find_web_asset(path);
    if (!a) throw HttpError(404, "no such page: " + path);
    res.set_content(std::string(a->body), std::string(a->content_type).c_str());
    // The page's own files only (the player's blob: URLs, no inline code), never in a frame.
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; object-src 'none'; "
                   "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
}

// ---- wiring ----

template <class F>
httplib::Server::Handler Server::Impl::plain(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
        try {
            f(req, res);
        } catch (...) {
            send_current_exception(res, error_style(req.path));
        }
    };
}

// A route that reads a body. Requests with a body skip the guard before routing (it could
// not read their body), so it runs here. A body the handler left unread (refused before
// reading) is drained up to drain_bytes, so that the client, still sending, gets the
// answer; past that the connection closes after it.
template <class F>
httplib::Server::HandlerWithContentReader Server::Impl::reading(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        // Without a Content-Length or a Transfer-Encoding a request has no body (RFC 9112
        // §6.3); httplib would read one until the client closes (or 5 s), taking the next
        // request's bytes with it.
        const bool body = has_body(req);
        bool used = !body;
        const httplib::ContentReader tracked(
            [&](httplib::ContentReceiver receiver) {
                used = true;
                return !body || reader(std::move(receiver));
            },
            [&](httplib::MultipartContentHeader header, httplib::ContentReceiver receiver) {
                used = true;
                return !body || reader(std::move(header), std::move(receiver));
            });
        try {
            if (auto refused = check_access(access, req)) throw *refused;
            f(req, res, tracked);
        } catch (...) {
            send_current_exception(res, error_style(req.path));
        }
        if (!used) {
            answer_decided();
            const int decided = res.status;
            if (!drain_body(req, reader, opt.limits)) {
                res.status = decided;  // httplib sets 400 where a read fails
                close_after_response(res);
            }
        }
    };
}

// Whether httplib answers "100 Continue" before reading the body (it compares exactly so).
static bool expects_continue(const httplib::Request& req) { return req.get_header_value("Expect") == "100-continue"; }

// How a request's body is framed, checked before anything of it is read (RFC 9112 §6):
// at most one Transfer-Encoding (httplib reads the first), one Content-Length of digits only,
// never with a Transfer-Encoding (httplib took "2abc" as 2,
// the first of two lengths, and chunked over a length: what a proxy in front may frame
// otherwise). Throws HttpError (closing) on anything else.
static void check_framing(const httplib::Request& req) {
    if (req.get_header_value_count("Transfer-Encoding") > 1)
        throw HttpError(400, "more than one Transfer-Encoding").closing();
    const size_t lengths = req.get_header_value_count("Content-Length");
    if (lengths == 0) return;
    if (lengths > 1) throw HttpError(400, "more than one Content-Length").closing();
    if (req.has_header("Transfer-Encoding"))
        throw HttpError(400, "Content-Length together with Transfer-Encoding").closing();
    const std::string n = req.get_header_value("Content-Length");
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos)
        throw HttpError(400, "Content-Length is not a number of bytes").closing();
}

// Runs before routing, for every request: the method, how a body is framed, then (for a
// request without a body, or a chunked one) the Host header and the key. Handled requests
// never reach a route, and their bodies are never read.
httplib::Server::HandlerResponse Server::Impl::guard(const httplib::Request& req, httplib::Response& res) {
    ranges_of(req).clear();  // only send_bytes answers a Range header (settle_ranges)
    try {
        // httplib reads the body of any other method to its end before routing (a PUT without
        // a length: until the client stops sending, all of it in memory).
        const std::string& m = req.method;
        if (m != "GET" && m != "HEAD" && m != "POST" && m != "DELETE")
            throw HttpError(405, "method " + m + " is not allowed (GET, HEAD, POST, DELETE)").closing();
        // RFC 9112 §3.2: a proxy that reads the last of two Hosts would name another server.
        if (req.get_header_value_count("Host") > 1) throw HttpError(400, "more than one Host header").closing();
        check_framing(req);
        if (has_body(req)) {
            if (m != "POST") throw HttpError(400, m + " requests take no body").closing();
            const std::string te = req.get_header_value("Transfer-Encoding");
            if (!te.empty() && strcasecmp(te.c_str(), "chunked") != 0)  // as httplib reads it
                throw HttpError(501, "Transfer-Encoding '" + brief_text(te) + "' is not supported (only chunked)").closing();
            const std::string ce = req.get_header_value("Content-Encoding");
            if (!ce.empty() && ce != "identity")
                throw HttpError(415, "Content-Encoding '" + brief_text(ce) + "' is not accepted: send the body as is").closing();
            // A refused body is drained so that the client sees the answer; a chunked one, or
            // one the client holds back until "100 Continue", from a client without the key
            // is refused here, unread: no reason to read it.
            if (!te.empty() || expects_continue(req))
                if (auto refused = check_access(access, req)) throw refused->closing();
            return httplib::Server::HandlerResponse::Unhandled;  // checked by reading()
        }
        if (auto refused = check_access(access, req)) throw *refused;
    } catch (...) {
        send_current_exception(res, error_style(req.path));
        return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
}

void Server::Impl::routes() {
    const std::string id = "/v1/videos/([^/]+)";
    http.set_pre_routing_handler([this](const auto& req, auto& res) {
        res.set_header("X-Content-Type-Options", "nosniff");  // every answer is the type it says
        return guard(req, res);
    });
    // A client that holds its body back until "100 Continue" (curl does, past 1 MiB) is
    // answered at once when the request is refused, not after sending the body for nothing.
    // (The guard runs again before routing; a request without a body is left to it there.)
    http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (!has_body(req) || guard(req, res) != httplib::Server::HandlerResponse::Handled) return 100;
        res.set_header("X-Content-Type-Options", "nosniff");
        return res.status;
    });
    http.Get("/", plain([this](auto&, auto& res) { asset("/index.html", res); }));
    http.Get(R"(/([A-Za-z0-9_-]+\.(html|js|css|svg)))", plain([this](auto& req, auto& res) { asset(req.path, res); }));
    http.Get("/health", plain([this](auto& req, auto& res) { health(req, res); }));
    http.Get("/metrics", plain([this](auto&, auto& res) { metrics_page(res); }));
    http.Post("/inference", reading([this](auto& req, auto& res, auto& r) { inference(req, res, r); }));
    http.Get("/v1/videos", plain([this](auto&, auto& res) { list_videos(res); }));
    http.Post("/v1/videos", reading([this](auto& req, auto& res, auto& r) { add_video(req, res, r); }));
    http.Post(id + "/query", reading([this](auto& req, auto& res, auto& r) { query_video(req, res, r); }));
    http.Delete(id, plain([this](auto& req, auto& res) { delete_video(req, res); }));
    http.Get(id + "/file", plain([this](auto& req, auto& res) { video_file(req, res); }));
    http.Get(id + "/clip", plain([this](auto& req, auto& res) { clip(req, res); }));
    http.Post("/v1/chat/completions", reading([this](auto& req, auto& res, auto& r) { chat_completions(req, res, r); }));
    http.Get("/v1/models", plain([this](auto&, auto& res) { models(res); }));
    http.Get("/v1/models/(.+)", plain([this](auto& req, auto& res) { model(req, res); }));
    // Last: any other POST is read here (counted, drained) rather than into memory by httplib.
    http.Post(".*", reading([](auto&, auto&, auto&) { throw HttpError(404, "not found"); }));

    // httplib's own errors (unknown route, bad request line) get the same JSON body as ours.
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (res.body.empty() && res.get_header_value("Connection") != "close")
            send_error(res, res.status, default_error_message(res.status), error_style(req.path));
    });
    // What read_form counts is the limit; httplib's own check on Content-Length stays above it.
    const int64_t biggest = std::max(opt.limits.max_body_bytes(), opt.limits.max_document_bytes());
    http.set_payload_max_length(static_cast<size_t>(biggest + opt.limits.drain_bytes + 1));
    // Enough threads that requests waiting in the job queue never starve /health.
    const int threads = opt.limits.http_threads, queued = opt.limits.queued_connections;
    http.new_task_queue = [threads, queued] {
        return new ConnectionPool(static_cast<size_t>(threads), static_cast<size_t>(queued));
    };
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
        metrics.request(req.method, req.path, res.status);
        std::fprintf(stderr, "vidi serve: %s %s -> %d\n", printable(req.method).c_str(), printable(req.path).c_str(),
                     res.status);
    });
    // A request line, header or chunk-size line past its bound, too many headers, requests too
    // slow, or too many connections from one address: refused while httplib reads them
    // (guarded_http.h), answered and closed.
    http.set_guard({.framing = opt.limits.framing,
                    .timeouts = {.head = std::chrono::milliseconds(opt.limits.head_timeout_ms),
                                 .min_rate = static_cast<uint64_t>(std::max<int64_t>(0, opt.limits.min_request_rate)),
                                 .rate_grace = std::chrono::milliseconds(opt.limits.request_rate_grace_ms)},
                    .connections_per_address = static_cast<size_t>(std::max(0, opt.limits.connections_per_address)),
                    .count_loopback = opt.limits.count_loopback_connections,
                    .on_refused = [this](const std::string& remote, const FramingRefusal& r) {
                        metrics.request("", "", r.status);
                        int64_t held_back = 0;
                        if (!refusal_log.allow(LogLimit::Clock::now(), held_back)) return;
                        if (held_back > 0)
                            std::fprintf(stderr, "vidi serve: %lld more refused requests not logged\n",
                                         static_cast<long long>(held_back));
                        std::fprintf(stderr, "vidi serve: refused a request from %s: %s -> %d\n",
                                     printable(remote).c_str(), r.message.c_str(), r.status);
                    }});
}

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
