// The bounds on how a request is framed, held byte by byte as httplib reads them.
// cpp-httplib 0.11 reads a request line, each header line and each chunk-size line whole
// before it looks at its length, and counts no header lines: one endless line, or endless
// headers, made the process hold them in memory. RequestFraming follows what a connection's
// reader takes, in order (the request line, the headers up to the blank line, then the body
// as httplib's parsed headers frame it: by its Content-Length, or a chunked body's size
// lines, data and CRLFs), refuses at the first byte past a bound, before that byte is kept
// anywhere, and says whether the request was read exactly to its end, so that the
// connection's next bytes start the next request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace vidi::server {

struct FramingLimits {
    size_t request_line_bytes = 8 << 10;  // 414 past it (httplib's own limit, held while reading)
    size_t header_line_bytes = 8 << 10;   // one header line, its CRLF included: 431
    size_t header_lines = 100;            // 431
    size_t head_bytes = 64 << 10;         // request line and headers together: 431
    size_t chunk_line_bytes = 1 << 10;    // a chunk-size line, its extensions included: 400
};

// Why a connection's request was refused: the status and the message its answer carries.
struct FramingRefusal {
    int status = 0;
    std::string message;
};

class RequestFraming {
public:
    explicit RequestFraming(FramingLimits limits = {});

    // A request starts at the next byte taken (and the last one's refusal is forgotten).
    void begin_request();
    // Takes the next `n` bytes the reader consumes. Returns how many keep within the bounds:
    // all of them, or fewer once refusal() is set; after a refusal nothing more is taken.
    size_t take(const char* data, size_t n);
    // Refuses the request for a reason found outside the bytes (its headers took too long).
    void refuse(int status, std::string message);
    // How the body is framed, from the headers as httplib parsed them (their end taken
    // already): chunked, else `length` bytes (0: no body). Until then the body is unframed.
    void frame_body(bool chunked, uint64_t length);

    const std::optional<FramingRefusal>& refusal() const { return refusal_; }
    // Before the blank line that ends the headers (what the headers' deadline covers).
    bool in_head() const { return state_ == State::request_line || state_ == State::header_line; }
    // Whether the request was taken exactly to its end: its headers, then the body that
    // frame_body() announced, and not a byte more. A request left part-read (httplib answered
    // before reading its body or its headers) leaves the connection unframed.
    bool complete() const { return state_ == State::done && !overrun_; }
    // Whether any byte of this request was taken.
    bool begun() const { return state_ != State::request_line || !line_.empty(); }

private:
    // unframed: the headers ended, the body's framing is not known (yet).
    enum class State { request_line, header_line, unframed, body, chunk_size, chunk_data, chunk_end, last_line, done };

    size_t line_limit() const;
    void line_refused();
    void end_of_line();
    void end_of_header_line();
    void end_of_chunk_size();
    // chunk_end, last_line: the CRLF that must come next, byte by byte.
    bool take_crlf(char c);

    FramingLimits limits_;
    State state_ = State::request_line;
    std::string line_;  // the line being read, up to its bound
    size_t head_bytes_ = 0, header_lines_ = 0;
    unsigned long long body_left_ = 0;  // of the Content-Length body, or of the current chunk
    bool overrun_ = false;              // bytes taken past the request's end, or before its framing
    std::optional<FramingRefusal> refusal_;
};

}  // namespace vidi::server
