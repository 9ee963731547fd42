// A streaming multipart/form-data parser (RFC 7578) for bodies from untrusted clients: the
// bytes arrive in pieces of any size, parts come out as a header event then data events,
// and nothing it holds grows with the body (one part's header block at most, bounded).
// cpp-httplib 0.11 has a parser of its own, but it hides the envelope bytes (preamble,
// part headers, epilogue) from the caller, so the body's size could not be bounded, and it
// matches part headers with std::regex; the server feeds this one the raw body instead.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace vidi::server {

struct PartHeader {
    std::string name;          // Content-Disposition name="…"
    std::string filename;      // filename="…" (empty for a text field)
    bool has_filename = false;
    std::string content_type;  // the part's Content-Type (may be empty)
};

// "multipart/form-data; boundary=XYZ" -> "XYZ"; throws HttpError(400) when the type has no
// usable boundary (1-70 characters, RFC 2046).
std::string multipart_boundary(const std::string& content_type);

class MultipartParser {
public:
    using OnHeader = std::function<void(const PartHeader&)>;
    using OnData = std::function<void(const char* data, size_t n)>;

    // Both callbacks may throw to stop the parse; max_header_bytes bounds one part's headers.
    MultipartParser(const std::string& boundary, size_t max_header_bytes, OnHeader on_header, OnData on_data);

    // Throws HttpError(400) on a malformed body.
    void feed(const char* data, size_t n);
    // Throws HttpError(400) unless the closing boundary was seen.
    void finish() const;
    bool done() const { return state_ == State::Done; }

private:
    enum class State { Preamble, AfterDelimiter, Headers, Body, Done };
    void parse_header_line(const std::string& line);
    void step();

    std::string delimiter_;  // "\r\n--" + boundary
    size_t max_header_bytes_;
    OnHeader on_header_;
    OnData on_data_;
    State state_ = State::Preamble;
    std::string buf_;          // bytes not yet consumed
    size_t header_bytes_ = 0;  // of the current part
    PartHeader part_;
};

}  // namespace vidi::server
