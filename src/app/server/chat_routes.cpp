// POST /v1/chat/completions and GET /v1/models: the OpenAI shapes over the same machinery as
// the native API: the same body reader and limits (a data: URL goes into the upload store),
// the same video rules (registered ids, --media-root paths, uploads), the same batcher,
// deadline and access checks.
#include <ctime>

#include "app/server/data_url.h"
#include "app/server/http_error.h"
#include "app/server/openai.h"
#include "app/server/server_impl.h"
#include "app/server/sse.h"
#include "app/server/video_file.h"

using nlohmann::json;

namespace vidi::server {
namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

// A video_url: the placeholder of a data: URL the reader stored, a path (or file:// URL) under
// a media root, or the id of a registered video. Nothing is fetched from the network.
VideoSource Server::Impl::video_from_url(const std::string& url, const Form& form, std::string& video_id) {
    if (url == kDataUrlPlaceholder && form.video) return upload_source(*form.video);
    if (starts_with(url, "data:"))
        throw HttpError(400, "a data: URL must be base64 (\"data:video/mp4;base64,...\") in the \"url\" of the "
                             "video_url part");
    if (starts_with(url, "file://")) return path_source(url.substr(7));
    if (starts_with(url, "/")) return path_source(url);
    if (url.find("://") != std::string::npos)
        throw HttpError(400, "video_url: remote URLs are not fetched; send the video as a data: URL, register it "
                             "(POST /v1/videos) and give its id, or name a file under a --media-root");
    auto v = registry.find(url);
    if (!v) throw HttpError(404, "unknown video id '" + brief_text(url) + "' (POST /v1/videos registers one)");
    video_id = v->id;
    return v->source;
}

void Server::Impl::chat_completions(const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
    const auto t0 = Clock::now();
    Form form = read_form(req, reader, opt.limits, uploads, BodyKind::document);
    const ChatRequest c = parse_chat_request(form.document, model_name, opt.max_new_tokens,
                                                static_cast<size_t>(opt.limits.max_field_bytes));
    if (form.video && c.video_url != std::string(kDataUrlPlaceholder))
        throw HttpError(400, "a data: URL may only be the \"url\" of the video_url part");
    std::string video_id;
    VideoSource source;
    if (c.video_url) source = video_from_url(*c.video_url, form, video_id);
    auto ticket = submit_question(std::move(source), c.question);
    const std::string id = completion_id();
    const int64_t created = static_cast<int64_t>(std::time(nullptr));
    const Task task = c.question.task;
    const int max_tokens = c.question.options.max_new_tokens;
    auto vidi = [this, ticket, task, video_id, t0] {
        const QueryRequest& r = ticket->request();
        return vidi_field(task, r.answer, video_id, timings_json(r, seconds_since(t0)));
    };
    if (!c.stream) {
        answer(ticket);
        const Answer& a = ticket->request().answer;
        return send_json(res, chat_completion(id, created, model_name, a, finish_reason(a, max_tokens), vidi()));
    }

    // Streamed: the status is settled once the first token (or the end) is there, so a request
    // refused or timed out in the queue still gets its error status instead of an event, and
    // one whose client left while its video was encoded is cancelled then.
    answer(ticket, Await::first_news);
    const auto deadline = deadline_from(ticket->request().queued);
    event_stream_headers(res);
    const std::string model = model_name, timeout = timeout_message();
    const bool usage = c.include_usage;
    res.set_chunked_content_provider(
        "text/event-stream",
        [=](size_t, httplib::DataSink& sink) {
            auto fail = [&](int status, const std::string& message) {
                write_event(sink, error_body(status, message, ErrorStyle::openai));
                sink.done();
                return true;
            };
            const json first = chat_chunk(id, created, model, {{"role", "assistant"}, {"content", ""}});
            if (!write_event(sink, json_text(first))) {
                ticket->cancel(kClientWentAway);
                return false;
            }
            TextDeltas deltas;
            for (;;) {
                const QueryTicket::State st = ticket->state();
                if (st.error) {
                    try {
                        std::rethrow_exception(st.error);
                    } catch (...) {
                        const auto [status, message] = current_exception_status();
                        return fail(status, message);
                    }
                }
                const std::string delta = deltas.next(st.text, st.finished);
                if (!delta.empty() &&
                    !write_event(sink, json_text(chat_chunk(id, created, model, {{"content", delta}})))) {
                    ticket->cancel(kClientWentAway);
                    return false;
                }
                if (st.finished) {
                    const Answer& a = ticket->request().answer;
                    write_event(sink, json_text(chat_chunk(id, created, model, json::object(),
                                                           finish_reason(a, max_tokens), vidi())));
                    if (usage) write_event(sink, json_text(usage_chunk(id, created, model, a)));
                    write_event(sink, "[DONE]");
                    sink.done();
                    return true;
                }
                // A comment every second finds a client that went away (its row then leaves).
                if (!ticket->wait_newer(st.version, std::min(deadline, Clock::now() + std::chrono::seconds(1)))) {
                    if (Clock::now() >= deadline) {
                        ticket->cancel(timeout);
                        return fail(503, timeout);
                    }
                    if (!write_comment(sink, "decoding")) {
                        ticket->cancel(kClientWentAway);
                        return false;
                    }
                }
            }
        },
        [ticket](bool ok) {
            if (!ok) ticket->cancel(kClientWentAway);
        });
}

void Server::Impl::models(httplib::Response& res) { send_json(res, model_list(model_name, started_at)); }

void Server::Impl::model(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (id != model_name)
        throw HttpError(404, "the model '" + brief_text(id) + "' does not exist; this server serves '" + model_name + "'");
    send_json(res, model_object(model_name, started_at));
}

}  // namespace vidi::server
