// libFuzzer: the request framing guard (src/app/server/request_framing.h) on arbitrary
// connection bytes, alone and inside the server's own request loop. Byte 0 picks small or
// default bounds, byte 1 the size of the pieces the bytes arrive in.
// - Fed in pieces or whole, the guard stops at the same byte with the same answer; it never
//   takes more than it is given, nothing after a refusal, and no line, header count or head
//   past its bound (a plain re-count of what it took).
// - GuardedHttpServer::serve_request (httplib's parser with the guard framing each body from
//   the parsed headers) reads the same bytes request after request, as a connection does:
//   wherever httplib read a body the server would read (one Content-Length of digits, or
//   chunked alone) to its end without error, the guard says the request is complete, and
//   the next request starts at the next byte.
#include <httplib.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "app/server/guarded_http.h"
#include "app/server/request_framing.h"

using vidi::server::FramingLimits;
using vidi::server::RequestFraming;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

// The request line and headers within what the guard took, re-counted.
void check_head(const std::string& taken, const FramingLimits& l) {
    size_t line_start = 0, lines = 0;
    for (size_t i = 0; i < taken.size(); ++i) {
        check(i < l.head_bytes);
        if (taken[i] != '\n') {
            check(i - line_start + 1 <= (lines == 0 ? l.request_line_bytes : l.header_line_bytes));
            continue;
        }
        if (lines > 0 && i - line_start == 1 && taken[line_start] == '\r') return;  // the blank line
        check(lines <= l.header_lines + 1);  // header line number `lines`: the guard takes one past its bound, then refuses
        ++lines;
        line_start = i + 1;
    }
}

void check_pieces(const char* bytes, size_t n, size_t piece, const FramingLimits& limits) {
    RequestFraming whole(limits), pieces(limits);
    const size_t taken_whole = whole.take(bytes, n);
    check(taken_whole <= n);
    size_t taken_pieces = 0;
    for (size_t at = 0; at < n; at += piece) {
        const size_t k = std::min(piece, n - at);
        const size_t t = pieces.take(bytes + at, k);
        check(t <= k);
        taken_pieces += t;
        if (t < k) {
            check(pieces.refusal().has_value());  // fewer bytes only with a reason
            check(pieces.take(bytes, 1) == 0);    // and nothing after it
            break;
        }
    }
    check(taken_pieces == taken_whole);
    check(whole.refusal().has_value() == pieces.refusal().has_value());
    if (whole.refusal())
        check(whole.refusal()->status == pieces.refusal()->status && whole.refusal()->message == pieces.refusal()->message);
    check_head(std::string(bytes, taken_whole), limits);
}

// A connection's bytes in memory, read through the guard as GuardedStream reads a socket.
class MemoryConnection final : public httplib::Stream {
public:
    MemoryConnection(const char* data, size_t size, RequestFraming& framing)
        : data_(data), size_(size), framing_(framing) {}
    size_t at() const { return at_; }

    bool is_readable() const override { return true; }
    bool is_writable() const override { return !framing_.refusal(); }
    ssize_t read(char* ptr, size_t size) override {
        if (framing_.refusal()) return -1;
        const size_t k = std::min(size, size_ - at_);
        if (k == 0) return 0;
        if (framing_.take(data_ + at_, k) < k) return -1;
        std::memcpy(ptr, data_ + at_, k);
        at_ += k;
        return static_cast<ssize_t>(k);
    }
    ssize_t write(const char*, size_t size) override { return static_cast<ssize_t>(size); }
    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        ip = "127.0.0.1";
        port = 1;
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override { get_remote_ip_and_port(ip, port); }
    socket_t socket() const override { return 3; }

private:
    const char* data_;
    size_t size_, at_ = 0;
    RequestFraming& framing_;
};

// What the handler saw of the last request.
struct Seen {
    bool read = false, read_ok = false;
    uint64_t body_bytes = 0;
};
Seen seen;

class Parser : public vidi::server::GuardedHttpServer {
public:
    Parser() {
        Get(".*", [](const httplib::Request&, httplib::Response&) {});
        Post(".*", [](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
            // The server reads a body only when it is framed one way (server.cpp's guard).
            const std::string te = req.get_header_value("Transfer-Encoding");
            const std::string cl = req.get_header_value("Content-Length");
            const size_t lengths = req.get_header_value_count("Content-Length");
            const bool chunked = req.has_header("Transfer-Encoding") && te == "chunked" && lengths == 0;
            const bool by_length = !req.has_header("Transfer-Encoding") && lengths == 1 && !cl.empty() &&
                                   cl.find_first_not_of("0123456789") == std::string::npos;
            if (!chunked && !by_length) {
                res.status = 400;
                return;
            }
            seen.read = true;
            seen.read_ok = reader([](const char*, size_t n) {
                seen.body_bytes += n;
                return true;
            });
        });
    }
};

void check_against_httplib(const char* bytes, size_t n, const FramingLimits& limits) {
    static Parser parser;
    RequestFraming framing(limits);
    MemoryConnection conn(bytes, n, framing);
    for (int request = 0; request < 8 && conn.at() < n; ++request) {
        framing.begin_request();
        seen = Seen{};
        bool closed = false;
        parser.serve_request(conn, framing, false, closed);
        if (framing.refusal()) return;
        // (At the end of the bytes httplib takes a line cut short for a whole one: the
        // connection is over either way.)
        if (seen.read && seen.read_ok && conn.at() < n) check(framing.complete());
        if (!framing.complete()) return;  // the server closes the connection here
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const FramingLimits limits = data[0] & 1 ? FramingLimits{64, 48, 4, 160, 16} : FramingLimits{};
    const char* bytes = reinterpret_cast<const char*>(data + 2);
    check_pieces(bytes, size - 2, 1 + data[1] % 64, limits);
    check_against_httplib(bytes, size - 2, limits);
    return 0;
}
