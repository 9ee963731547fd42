#include "app/server/request_framing.h"

#include <strings.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace vidi::server {
namespace {

std::string kib(size_t bytes) { return std::to_string(bytes >> 10) + " KiB"; }

}  // namespace

RequestFraming::RequestFraming(FramingLimits limits) : limits_(limits) {}

void RequestFraming::begin_request() {
    state_ = State::request_line;
    line_.clear();
    head_bytes_ = header_lines_ = 0;
    body_left_ = 0;
    overrun_ = false;
    refusal_.reset();
}

void RequestFraming::frame_body(bool chunked, uint64_t length) {
    if (state_ != State::unframed) return;
    if (chunked) {
        state_ = State::chunk_size;
    } else if (length > 0) {
        state_ = State::body;
        body_left_ = length;
    } else {
        state_ = State::done;
    }
}

void RequestFraming::refuse(int status, std::string message) {
    if (!refusal_) refusal_ = FramingRefusal{status, std::move(message)};
}

size_t RequestFraming::line_limit() const {
    switch (state_) {
    case State::request_line: return limits_.request_line_bytes;
    case State::header_line: return limits_.header_line_bytes;
    default: return limits_.chunk_line_bytes;
    }
}

void RequestFraming::line_refused() {
    switch (state_) {
    case State::request_line: return refuse(414, "request line longer than " + kib(limits_.request_line_bytes));
    case State::header_line: return refuse(431, "a header line longer than " + kib(limits_.header_line_bytes));
    default: return refuse(400, "a chunk-size line longer than " + kib(limits_.chunk_line_bytes));
    }
}

bool RequestFraming::take_crlf(char c) {
    if (c != (line_.empty() ? '\r' : '\n')) {
        // httplib would take the bytes after a chunk's data for a truncated body's end, and
        // whatever follows for the connection's next request.
        refuse(400, state_ == State::chunk_end ? "a chunk's data not followed by CRLF"
                                               : "the last chunk not followed by CRLF");
        return false;
    }
    line_ += c;
    if (c == '\n') end_of_line();
    return true;
}

size_t RequestFraming::take(const char* data, size_t n) {
    size_t i = 0;
    while (i < n && !refusal_) {
        switch (state_) {
        case State::unframed:
        case State::done:  // httplib read past the end (a body without a length): never complete
            overrun_ = true;
            return n;
        case State::body:
        case State::chunk_data: {
            const size_t k = static_cast<size_t>(std::min<unsigned long long>(body_left_, n - i));
            body_left_ -= k;
            i += k;
            if (body_left_ == 0) state_ = state_ == State::body ? State::done : State::chunk_end;
            continue;
        }
        case State::chunk_end:
        case State::last_line:
            if (!take_crlf(data[i])) return i;
            ++i;
            continue;
        default: break;
        }
        // A line: up to and including its '\n'.
        const auto* nl = static_cast<const char*>(std::memchr(data + i, '\n', n - i));
        const size_t k = nl ? static_cast<size_t>(nl - (data + i)) + 1 : n - i;
        const size_t room = line_limit() - line_.size();
        const size_t head_room = in_head() ? limits_.head_bytes - head_bytes_ : SIZE_MAX;
        if (k > room || k > head_room) {
            if (head_room < room) refuse(431, "request line and headers longer than " + kib(limits_.head_bytes));
            else line_refused();
            return i + std::min(room, head_room);
        }
        line_.append(data + i, k);
        if (in_head()) head_bytes_ += k;
        i += k;
        if (nl) end_of_line();
    }
    return refusal_ ? i : n;
}

void RequestFraming::end_of_line() {
    switch (state_) {
    case State::request_line: state_ = State::header_line; break;
    case State::header_line: end_of_header_line(); break;
    case State::chunk_size: end_of_chunk_size(); break;
    case State::chunk_end: state_ = State::chunk_size; break;
    case State::last_line: state_ = State::done; break;
    default: break;
    }
    line_.clear();
}

void RequestFraming::end_of_header_line() {
    if (line_ == "\r\n") {  // the end of the headers
        state_ = State::unframed;
        return;
    }
    if (++header_lines_ > limits_.header_lines)
        return refuse(431, "more than " + std::to_string(limits_.header_lines) + " header lines");
    // httplib drops the lines it cannot read as a header and percent-decodes values: a proxy in
    // front that reads those lines otherwise would frame the body otherwise (RFC 9112 §2.2,
    // §5.1, §5.2). Such heads are refused rather than read two ways.
    const std::string_view line(line_);
    if (line.size() < 2 || line[line.size() - 2] != '\r') return refuse(400, "a header line not ending in CRLF");
    if (line.front() == ' ' || line.front() == '\t') return refuse(400, "a folded header line (starting with a space)");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return refuse(400, "a header line without a name and ':'");
    if (line[colon - 1] == ' ' || line[colon - 1] == '\t') return refuse(400, "whitespace before a header's ':'");
    const std::string_view name = line.substr(0, colon);
    const auto is = [&](std::string_view header) {
        return name.size() == header.size() && strncasecmp(name.data(), header.data(), header.size()) == 0;
    };
    const bool framing = is("content-length") || is("transfer-encoding");
    // httplib drops a header whose value is empty: the body would be read as the next request,
    // and "Host:" then "Host: evil" would pass as one Host.
    const bool empty = line.find_first_not_of(" \t\r\n", colon + 1) == std::string_view::npos;
    if (empty && (framing || is("host"))) return refuse(400, "an empty " + std::string(name) + " header");
    if (framing && line.find('%', colon) != std::string_view::npos)
        return refuse(400, "'%' in a Content-Length or Transfer-Encoding");
}

void RequestFraming::end_of_chunk_size() {
    // RFC 9112 §7.1: hex digits, extensions after ';', CRLF. httplib reads the size with
    // strtoul, which also takes " 3", "+3", "0x3" and "-3" (2^64 - 3): a proxy in front may
    // read those otherwise, so they are refused, and a size it reads is the size counted here.
    const std::string_view line(line_);
    if (line.size() < 2 || line[line.size() - 2] != '\r') return refuse(400, "a chunk-size line not ending in CRLF");
    const std::string_view text = line.substr(0, line.size() - 2);
    const size_t digits = std::min(text.find_first_not_of("0123456789abcdefABCDEF"), text.size());
    const size_t ext = std::min(text.find_first_not_of(" \t", digits), text.size());
    if (digits == 0 || (ext < text.size() && text[ext] != ';') || (ext == text.size() && ext != digits))
        return refuse(400, "a chunk size that is not hex digits (then ';' and extensions)");
    const size_t significant = std::min(text.find_first_not_of('0'), digits);
    if (digits - significant > 15) return refuse(400, "a chunk size past 2^60 bytes");
    const uint64_t size = std::strtoull(std::string(text.substr(0, digits)).c_str(), nullptr, 16);
    if (size == 0) {
        state_ = State::last_line;
    } else {
        body_left_ = size;
        state_ = State::chunk_data;
    }
}

}  // namespace vidi::server
