// Errors the HTTP layer answers with a status that says whose fault it was, and the
// mapping from every exception a handler can meet to a JSON error response.
#pragma once

#include <stdexcept>
#include <string>

namespace httplib {
struct Response;
}

namespace vidi::server {

class HttpError : public std::runtime_error {
public:
    HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    int status() const { return status_; }

private:
    int status_;
};

// {"error": message} with `status`.
void send_error(httplib::Response& res, int status, const std::string& message);

// Answers the exception being handled (call inside a catch block): HttpError keeps its
// status; vidi::Error is bad input (400) unless it reports exhausted memory (503);
// JobCancelled (timeout, shutdown) and std::bad_alloc are 503; anything else is 500.
void send_current_exception(httplib::Response& res);

// Standard text for a status without a body of its own (httplib's own 404/413/400).
std::string default_error_message(int status);

}  // namespace vidi::server
