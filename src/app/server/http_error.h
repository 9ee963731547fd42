// Errors the HTTP layer answers with a status that says whose fault it was, and the
// mapping from every exception a handler can meet to a JSON error response.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include "app/json_text.h"

namespace httplib {
struct Response;
}

namespace vidi::server {

class HttpError : public std::runtime_error {
public:
    // `log_detail`: what only the server's log (stderr) learns, never the client.
    HttpError(int status, const std::string& message, std::string log_detail = {})
        : std::runtime_error(message), status_(status), log_detail_(std::move(log_detail)) {}
    int status() const { return status_; }
    const std::string& log_detail() const { return log_detail_; }
    // Marks an answer after which the connection must close (the request body was not read
    // to its end, so what follows it is not a request).
    HttpError& closing() {
        close_ = true;
        return *this;
    }
    bool close_connection() const { return close_; }

private:
    int status_;
    std::string log_detail_;
    bool close_ = false;
};

// The one answer to a video the server will not or cannot use (a path outside the media
// roots, a missing file, a file that is not media, one changed since registration): the
// client cannot tell these apart, so it cannot map the host's files; `why` goes to the log.
inline constexpr const char* kVideoUnavailable = "video not available";
HttpError video_unavailable(const std::string& why);

// A client that closed its connection before its answer: its work stops, and the log and
// /metrics count the request under nginx's 499 (no answer reaches anybody).
inline constexpr int kClientClosed = 499;
inline constexpr const char* kClientWentAway = "the client went away";

// How an error body looks: {"error": message}, or on the OpenAI-compatible routes OpenAI's
// {"error": {"message", "type", "param", "code"}}, which its clients read.
enum class ErrorStyle { vidi, openai };
ErrorStyle error_style(const std::string& path);
std::string error_body(int status, const std::string& message, ErrorStyle style);

// Answers quote what clients sent (a field name, an upload's file name, a host path): their
// JSON is written with app::json_text, and names kept are app::utf8_text.
using app::json_text;
using app::utf8_text;
// A client's value for an error message: json_text, cut to 80 characters.
std::string brief_json(const nlohmann::json& value);
// A client's text for an error message, cut to 80 characters (whole UTF-8 sequences).
std::string brief_text(const std::string& text);

// The error body with `status`.
void send_error(httplib::Response& res, int status, const std::string& message, ErrorStyle style = ErrorStyle::vidi);

// Answers the exception being handled (call inside a catch block): HttpError keeps its
// status (its log detail goes to stderr); vidi::Error is bad input (400) unless it reports exhausted memory (503);
// JobCancelled (timeout, shutdown) and std::bad_alloc are 503; anything else is 500.
void send_current_exception(httplib::Response& res, ErrorStyle style = ErrorStyle::vidi);
// The same as (status, message), for answers that are not a response of their own (an event).
std::pair<int, std::string> current_exception_status();

// `text` for the server's log: control bytes (CR, LF, ESC, …) as \xNN, so that what a client
// sent (a path, a file name) cannot forge log lines or drive a terminal.
std::string printable(const std::string& text);

// Sends `res` (already filled) without a length and then closes the connection.
void close_after_response(httplib::Response& res);

// Whether an engine error reports exhausted memory (the server's limit, not the client's input).
bool mentions_out_of_memory(std::string text);

// Standard text for a status without a body of its own (httplib's own 404/413/400).
std::string default_error_message(int status);

}  // namespace vidi::server
