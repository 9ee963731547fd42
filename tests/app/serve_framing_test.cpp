// How a request is framed, held while it is read (request_framing.h, guarded_http.h): the
// bounds byte by byte, then the same bounds, the headers' deadline, the requests' rate floor
// and pipelining on a real connection to an in-process server (the floor over a socket pair too).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/serve_client.h"
#include "app/serve_in_process.h"
#include "app/server/guarded_http.h"
#include "app/server/log_limit.h"
#include "app/server/request_framing.h"

namespace vidi::test {
namespace {

using server::FramingLimits;
using server::RequestFraming;

// Feeds `bytes` whole and one byte at a time; both must stop at the same byte. Returns how
// many bytes were taken, and leaves `f` as the whole feed left it.
size_t feed(RequestFraming& f, const std::string& bytes) {
    RequestFraming single = f;
    size_t one_by_one = 0;
    while (one_by_one < bytes.size() && single.take(bytes.data() + one_by_one, 1) == 1) ++one_by_one;
    const size_t whole = f.take(bytes.data(), bytes.size());
    EXPECT_EQ(whole, one_by_one);
    EXPECT_EQ(f.refusal().has_value(), single.refusal().has_value());
    return whole;
}

std::string header(size_t bytes) {  // "X-Pad: aaa…\r\n", `bytes` long with its CRLF
    return "X-Pad: " + std::string(bytes - 9, 'a') + "\r\n";
}

TEST(RequestFraming, EachLineIsRefusedAtTheFirstBytePastItsBound) {
    RequestFraming f;
    const std::string line = "GET /" + std::string(8192 - 16, 'a') + " HTTP/1.1\r\n";  // 8192 bytes: allowed
    ASSERT_EQ(line.size(), 8192u);
    EXPECT_EQ(feed(f, line), line.size());
    EXPECT_FALSE(f.refusal());
    EXPECT_EQ(feed(f, header(8192)), 8192u);
    EXPECT_EQ(feed(f, header(8193)), 8192u);  // the 8193rd byte of a header line is refused
    ASSERT_TRUE(f.refusal());
    EXPECT_EQ(f.refusal()->status, 431);
    EXPECT_EQ(f.refusal()->message, "a header line longer than 8 KiB");
    EXPECT_EQ(f.take("x", 1), 0u);  // nothing more is taken

    f.begin_request();
    EXPECT_FALSE(f.refusal());
    EXPECT_EQ(feed(f, "GET /" + std::string(9000, 'a')), 8192u);
    EXPECT_EQ(f.refusal()->status, 414);
    EXPECT_EQ(f.refusal()->message, "request line longer than 8 KiB");
}

TEST(RequestFraming, HeaderLinesAndTheWholeHeadAreCounted) {
    RequestFraming f;
    std::string head = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 100; ++i) head += "X-A: b\r\n";
    EXPECT_EQ(feed(f, head), head.size());
    EXPECT_FALSE(f.refusal());
    EXPECT_EQ(feed(f, "X-A: b\r\n"), 8u);  // the 101st line is read, then refused
    ASSERT_TRUE(f.refusal());
    EXPECT_EQ(f.refusal()->status, 431);
    EXPECT_EQ(f.refusal()->message, "more than 100 header lines");

    // Eight lines of 8 KiB and the request line are 64 KiB and 16 bytes: 16 bytes too many.
    f.begin_request();
    std::string big = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 8; ++i) big += header(8192);
    EXPECT_EQ(feed(f, big), big.size() - 16);
    EXPECT_EQ(f.refusal()->status, 431);
    EXPECT_EQ(f.refusal()->message, "request line and headers longer than 64 KiB");
    // Smaller bounds hold the same way.
    RequestFraming small(FramingLimits{64, 32, 2, 100, 8});
    EXPECT_EQ(feed(small, "GET / HTTP/1.1\r\nA: b\r\nC: d\r\n"), 28u);
    EXPECT_FALSE(small.refusal());
    EXPECT_EQ(feed(small, "E: f\r\n"), 6u);
    EXPECT_EQ(small.refusal()->message, "more than 2 header lines");
}

TEST(RequestFraming, ABodyIsTakenToTheEndItsHeadersFrameAndNotAByteMore) {
    RequestFraming f;
    const std::string head = "POST /x HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n";
    EXPECT_EQ(feed(f, head), head.size());
    EXPECT_FALSE(f.in_head());
    EXPECT_FALSE(f.complete());  // the body's framing comes from httplib's parsed headers
    f.frame_body(false, 2'000'000);
    const std::string body(2'000'000, 'z');  // no line ends: httplib reads it by its length
    EXPECT_EQ(f.take(body.data(), body.size() - 1), body.size() - 1);
    EXPECT_FALSE(f.complete());
    EXPECT_EQ(f.take(body.data(), 1), 1u);
    EXPECT_TRUE(f.complete());
    EXPECT_FALSE(f.refusal());
    EXPECT_EQ(f.take("z", 1), 1u);  // read past its end (httplib reading without a length)
    EXPECT_FALSE(f.complete());
    // Without a body: complete at the blank line, once framed.
    f.begin_request();
    EXPECT_EQ(feed(f, "GET / HTTP/1.1\r\nHost: x\r\n"), 25u);
    EXPECT_EQ(feed(f, "\r\n"), 2u);
    f.frame_body(false, 0);
    EXPECT_TRUE(f.complete());
    // Bytes taken before the framing is known (httplib answering before routing) frame nothing.
    f.begin_request();
    EXPECT_EQ(feed(f, "POST / HTTP/1.1\r\n\r\nab"), 21u);
    f.frame_body(false, 2);
    EXPECT_FALSE(f.complete());
    f.begin_request();
    EXPECT_TRUE(f.in_head());
    EXPECT_EQ(feed(f, std::string(9000, 'G')), 8192u);
    EXPECT_EQ(f.refusal()->status, 414);
}

TEST(RequestFraming, AChunkedBodyIsFollowedAndItsLinesAreBounded) {
    RequestFraming f;
    const std::string head = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    EXPECT_EQ(feed(f, head), head.size());
    f.frame_body(true, 0);
    // Chunk data is counted, not read as lines: newlines and long runs inside it are data.
    const std::string data(5000, '\n'), run(0x3000, 'q');
    const std::string body = "1388;name=value\r\n" + data + "\r\n3000\r\n" + run + "\r\n0\r\n\r\n";
    EXPECT_EQ(feed(f, body.substr(0, body.size() - 1)), body.size() - 1);
    EXPECT_FALSE(f.complete());
    EXPECT_EQ(feed(f, "\n"), 1u);
    EXPECT_TRUE(f.complete());
    EXPECT_FALSE(f.refusal());

    auto chunked = [&] {
        f.begin_request();
        EXPECT_EQ(feed(f, head), head.size());
        f.frame_body(true, 0);
    };
    chunked();
    EXPECT_EQ(feed(f, "1;" + std::string(4000, 'a')), 1024u);
    EXPECT_EQ(f.refusal()->status, 400);
    EXPECT_EQ(f.refusal()->message, "a chunk-size line longer than 1 KiB");
    // A chunk's data must be followed by CRLF (httplib took anything else for the end of a
    // truncated body, and what followed for the next request), and so must the last chunk.
    chunked();
    EXPECT_EQ(feed(f, "2\r\nab\rGET / HTTP/1.1\r\n\r\n"), 6u);
    EXPECT_EQ(f.refusal()->status, 400);
    EXPECT_EQ(f.refusal()->message, "a chunk's data not followed by CRLF");
    chunked();
    EXPECT_EQ(feed(f, "0\r\nX-Trailer: 1\r\n\r\n"), 3u);
    EXPECT_EQ(f.refusal()->message, "the last chunk not followed by CRLF");
    // A size is hex digits, then extensions after ';' (whitespace allowed before it), then CRLF:
    // httplib's strtoul read " 3", "+3", "0x3" as 3 and "-3" as 2^64 - 3, which a proxy may not.
    for (const std::string line :
         {"zz\r\n", "\r\n", " 3\r\n", "+3\r\n", "0x3\r\n", "-3\r\n", "3 \r\n", "3x\r\n", "3\n", "10000000000000000\r\n"}) {
        chunked();
        EXPECT_EQ(feed(f, line + "abc\r\n0\r\n\r\n"), line.size()) << line;
        ASSERT_TRUE(f.refusal()) << line;
        EXPECT_EQ(f.refusal()->status, 400);
    }
    EXPECT_EQ(f.refusal()->message, "a chunk size past 2^60 bytes");
    for (const char* size : {"3", "3;a=b", "3 \t;a", "03", "0000000000000000003", "3;"}) {
        chunked();
        const std::string body = std::string(size) + "\r\nabc\r\n0\r\n\r\n";
        EXPECT_EQ(feed(f, body), body.size()) << size;
        EXPECT_FALSE(f.refusal()) << size << ": " << f.refusal()->message;
        EXPECT_TRUE(f.complete()) << size;
    }
}

// httplib drops a line it cannot read as a header, and percent-decodes values: a proxy in
// front could read such a head otherwise, and frame the body otherwise. Refused instead.
TEST(RequestFraming, HeadLinesReadTwoWaysAreRefused) {
    const std::pair<const char*, const char*> cases[] = {
        {"Content-Length: 5\n", "a header line not ending in CRLF"},
        {" folded: yes\r\n", "a folded header line (starting with a space)"},
        {"no colon here\r\n", "a header line without a name and ':'"},
        {": no name\r\n", "a header line without a name and ':'"},
        {"Content-Length : 5\r\n", "whitespace before a header's ':'"},
        {"Content-Length: %35\r\n", "'%' in a Content-Length or Transfer-Encoding"},
        {"transfer-encoding: %63hunked\r\n", "'%' in a Content-Length or Transfer-Encoding"},
        // httplib drops a header with an empty value: the body was read as the next request, and
        // "Host:" then "Host: evil" passed as one Host.
        {"Content-Length:\r\n", "an empty Content-Length header"},
        {"transfer-encoding: \t \r\n", "an empty transfer-encoding header"},
        {"Host:\r\n", "an empty Host header"},
    };
    for (const auto& [line, message] : cases) {
        RequestFraming f;
        const std::string head = std::string("POST / HTTP/1.1\r\n") + line;
        EXPECT_EQ(feed(f, head), head.size()) << line;  // the line is read, then refused
        ASSERT_TRUE(f.refusal()) << line;
        EXPECT_EQ(f.refusal()->status, 400);
        EXPECT_EQ(f.refusal()->message, message);
    }
    RequestFraming f;  // '%' elsewhere is any other header's business
    EXPECT_EQ(feed(f, "GET / HTTP/1.1\r\nX-Progress: 100%\r\nContent-Type: a;b=c\r\n\r\n"), 57u);
    EXPECT_FALSE(f.refusal());
}

TEST(LogLimit, AtMostItsLinesASecondAndTheRestCounted) {
    server::LogLimit limit(3);
    const auto t0 = server::LogLimit::Clock::now();
    int64_t held = -1;
    int written = 0;
    for (int i = 0; i < 10; ++i) written += limit.allow(t0, held);
    EXPECT_EQ(written, 3);
    EXPECT_TRUE(limit.allow(t0 + std::chrono::milliseconds(1100), held));
    EXPECT_EQ(held, 7);
    EXPECT_TRUE(limit.allow(t0 + std::chrono::milliseconds(1200), held));
    EXPECT_EQ(held, 0);
}

TEST(ConnectionAddressKey, IPv4AsItIsIPv6ByItsSlash64) {
    EXPECT_EQ(server::connection_address_key("192.0.2.7"), "192.0.2.7");
    EXPECT_EQ(server::connection_address_key("::ffff:192.0.2.7"), "192.0.2.7");
    EXPECT_EQ(server::connection_address_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
    EXPECT_EQ(server::connection_address_key("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
    EXPECT_EQ(server::connection_address_key("::1"), "::1");
}

// ---- on a connection to the server ----

class ServeFramingTest : public FakeServerTest {};

// The answer's status lines, in order.
std::vector<int> statuses(const std::string& text) {
    std::vector<int> out;
    for (size_t at = 0; (at = text.find("HTTP/1.1 ", at)) != std::string::npos; at += 9)
        out.push_back(std::atoi(text.c_str() + at + 9));
    return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// `first`, then `piece` again every `every`, each read well within the 5 s read timeout, for up
// to 8 s or until the server stops taking them (it drains what still comes for 2 s after its
// answer, then closes): what came back, which must be the server's doing.
RawAnswer send_slowly(int port, const std::string& first, const std::string& piece, std::chrono::milliseconds every) {
    RawConnection conn(port);
    const auto t0 = std::chrono::steady_clock::now();
    bool sending = conn.send(first);
    while (sending && seconds_since(t0) < 8) {
        std::this_thread::sleep_for(every);
        sending = conn.send(piece);
    }
    RawAnswer a = conn.finish();
    EXPECT_LT(seconds_since(t0), 7.0);  // closed by the server, not by the client giving up
    return a;
}

TEST_F(ServeFramingTest, EndlessLinesAndHeadersAreAnsweredAndClosed) {
    InProcessServer srv(engine_, options_);
    struct Case {
        std::string head;
        int status;
        std::string words;
    };
    const Case cases[] = {
        {"GET /" + std::string(1 << 20, 'a'), 414, "request line longer than 8 KiB"},
        {"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(4 << 20, 'a'), 431,
         "a header line longer than 8 KiB"},
        {"GET /health HTTP/1.1\r\n" + [] {
             std::string lines;
             for (int i = 0; i < 200'000; ++i) lines += "X-A: b\r\n";
             return lines;
         }(),
         431, "more than 100 header lines"},
    };
    for (const Case& c : cases) {
        RawConnection conn(srv.port());
        ASSERT_TRUE(conn.connected());
        conn.send(c.head);  // may stop part way: the server refuses, drains a while and closes
        const RawAnswer a = conn.finish();
        EXPECT_EQ(a.status, c.status) << a.text.substr(0, 300);
        EXPECT_NE(a.text.find("\"error\":\"" + c.words + "\""), std::string::npos) << a.text.substr(0, 300);
        EXPECT_NE(a.text.find("Connection: close"), std::string::npos);
        EXPECT_TRUE(a.closed_early);
    }
    auto cli = srv.client();
    const auto metrics = cli.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metric_value(metrics->body, R"(vidi_http_requests_total{endpoint="other",method="other",status="431"})"), 2);
    EXPECT_EQ(metric_value(metrics->body, R"(vidi_http_requests_total{endpoint="other",method="other",status="414"})"), 1);
}

TEST_F(ServeFramingTest, AnEndlessChunkSizeLineIs400) {
    InProcessServer srv(engine_, options_);  // no key: a chunked body is read
    RawConnection conn(srv.port());
    conn.send("POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
              "Content-Type: multipart/form-data; boundary=XyZ\r\n\r\n1;");
    conn.send_filler(4 << 20, 'a');
    const RawAnswer a = conn.finish();
    EXPECT_EQ(a.status, 400) << a.text.substr(0, 300);
    EXPECT_NE(a.text.find("a chunk-size line longer than 1 KiB"), std::string::npos) << a.text.substr(0, 300);
    EXPECT_EQ(srv.client().Get("/health")->status, 200);
}

TEST_F(ServeFramingTest, AChunkedUploadStillRegistersItsVideo) {
    InProcessServer srv(engine_, options_);
    const RawAnswer a = post_chunked(
        srv.port(), "POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XyZ",
        "--XyZ\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.fake\"\r\n\r\n" + read_file(video_),
        0, "\r\n--XyZ--\r\n");
    EXPECT_EQ(a.status, 200) << a.text.substr(0, 300);
    EXPECT_NE(a.text.find("\"id\""), std::string::npos) << a.text.substr(0, 300);
}

TEST_F(ServeFramingTest, HeadersSentSlowlyAre408AtTheirDeadline) {
    options_.limits.head_timeout_ms = 1000;
    InProcessServer srv(engine_, options_);
    // A header line every 200 ms.
    const RawAnswer a = send_slowly(srv.port(), "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-Slow: 1\r\n",
                                    std::chrono::milliseconds(200));
    EXPECT_EQ(a.status, 408) << a.text.substr(0, 300);
    EXPECT_NE(a.text.find("the request line and headers took longer than 1 s"), std::string::npos) << a.text;
    EXPECT_GT(a.first_byte_s, 0.9);
    EXPECT_LT(a.first_byte_s, 2.5);
    // A request whose headers come at once is not held to anything but the read timeout.
    EXPECT_EQ(srv.client().Get("/health")->status, 200);
}

// A GuardedStream over a socket pair; begin_body: a request's head read through it, its body
// framed by `length`.
struct StreamPair {
    explicit StreamPair(server::GuardedStream::Timeouts t) {
        EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
        strm = std::make_unique<server::GuardedStream>(fd[0], FramingLimits{}, t);
    }
    ~StreamPair() {
        strm.reset();
        close(fd[0]);
        close(fd[1]);
    }
    void begin_body(uint64_t length) {
        const std::string head = "POST /v1/videos HTTP/1.1\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
        client(head);
        strm->begin_request();
        std::string got(head.size(), '\0');
        for (size_t at = 0; at < got.size();) {
            const ssize_t n = strm->read(got.data() + at, got.size() - at);
            ASSERT_GT(n, 0);
            at += static_cast<size_t>(n);
        }
        ASSERT_EQ(got, head);
        strm->framing().frame_body(false, length);
    }
    void client(const std::string& bytes) { ASSERT_EQ(write(fd[1], bytes.data(), bytes.size()), ssize_t(bytes.size())); }
    int fd[2] = {-1, -1};
    std::unique_ptr<server::GuardedStream> strm;
};

TEST(GuardedStream, OnlyTheTimeSpentWaitingForTheBodyCountsAgainstItsFloor) {
    server::GuardedStream::Timeouts t;
    t.min_rate = 1000;  // bytes a second
    t.rate_grace = std::chrono::milliseconds(1000);
    StreamPair p(t);
    p.begin_body(4000);
    // The server busy elsewhere for longer than the grace: bytes waiting in the socket cost nothing.
    p.client(std::string(500, 'a'));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    char buf[4096];
    ASSERT_EQ(p.strm->read(buf, sizeof buf), 500);
    EXPECT_FALSE(p.strm->refusal());
    // Nothing more comes: 1 s of grace plus ~0.55 s earned by the head and 500 bytes at 1000 bytes/s.
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(p.strm->read(buf, sizeof buf), -1);
    const double waited = seconds_since(t0);
    EXPECT_GT(waited, 1.4);
    EXPECT_LT(waited, 2.5);
    ASSERT_TRUE(p.strm->refusal());
    EXPECT_EQ(p.strm->refusal()->status, 408);
    EXPECT_EQ(p.strm->refusal()->message,
              "the request came slower than 1000 bytes/s (after the connection's first 1 s of waiting)");
}

TEST(GuardedStream, ABodyAboveTheFloorIsReadWhole) {
    server::GuardedStream::Timeouts t;
    t.min_rate = 20'000;
    t.rate_grace = std::chrono::milliseconds(500);
    StreamPair p(t);
    p.begin_body(75'000);
    // 1000 bytes every 40 ms (25 000 bytes/s) for 3 s, six times the grace: the allowance grows
    // by a quarter of the time waited, so late wake-ups of the sender are absorbed.
    std::thread sender([&] {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 1; i <= 75; ++i) {
            std::this_thread::sleep_until(t0 + i * std::chrono::milliseconds(40));
            p.client(std::string(1000, 'a'));
        }
    });
    size_t got = 0;
    char buf[4096];
    while (got < 75'000) {
        const ssize_t n = p.strm->read(buf, sizeof buf);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
    }
    sender.join();
    EXPECT_EQ(got, 75'000u);
    EXPECT_FALSE(p.strm->refusal());
    EXPECT_TRUE(p.strm->request_complete());
}

TEST(GuardedStream, KeepAliveRenewsNoGrace) {
    server::GuardedStream::Timeouts t;
    t.min_rate = 1000;
    t.rate_grace = std::chrono::milliseconds(1000);
    StreamPair p(t);
    // The first request's 10 bytes come after 0.7 s of its connection's 1 s grace.
    p.begin_body(10);
    std::thread late([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        p.client(std::string(10, 'a'));
    });
    char buf[64];
    size_t got = 0;
    while (got < 10) {
        const ssize_t n = p.strm->read(buf, sizeof buf);
        ASSERT_GT(n, 0);
        got += static_cast<size_t>(n);
    }
    late.join();
    EXPECT_TRUE(p.strm->request_complete());
    // The next request on the connection gets what is left (~0.3 s, plus ~0.1 s its bytes
    // earned), not a fresh second.
    p.begin_body(10);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(p.strm->read(buf, sizeof buf), -1);
    EXPECT_LT(seconds_since(t0), 0.9);
    ASSERT_TRUE(p.strm->refusal());
    EXPECT_EQ(p.strm->refusal()->status, 408);
}

// An upload trickled at 200 bytes/s: `head` (its request line and headers, without the blank
// line) then the body, with a length or chunked: `part`, then 20 bytes every 100 ms.
RawAnswer trickle_upload(int port, const std::string& head, const std::string& part, bool chunked) {
    const auto body = [&](const std::string& bytes) {
        if (!chunked) return bytes;
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
        return size + bytes + "\r\n";
    };
    const std::string framing = chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: 100000\r\n\r\n";
    return send_slowly(port, head + framing + body(part), body(std::string(20, 'v')), std::chrono::milliseconds(100));
}

const std::string kUploadHead = "POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                "Content-Type: multipart/form-data; boundary=XyZ\r\n";
const std::string kVideoPart =
    "--XyZ\r\nContent-Disposition: form-data; name=\"video\"; filename=\"clip.fake\"\r\n\r\n";

TEST_F(ServeFramingTest, ABodySentSlowlyIs408InEveryEncoding) {
    options_.limits.min_request_rate = 64 << 10;
    options_.limits.request_rate_grace_ms = 1000;
    InProcessServer srv(engine_, options_);
    for (const bool chunked : {false, true}) {
        SCOPED_TRACE(chunked ? "chunked" : "Content-Length");
        const RawAnswer a = trickle_upload(srv.port(), kUploadHead, kVideoPart, chunked);
        EXPECT_EQ(a.status, 408) << a.text.substr(0, 300);
        EXPECT_NE(a.text.find("the request came slower than 64 KiB/s (after the connection's first 1 s of waiting)"),
                  std::string::npos)
            << a.text;
        EXPECT_NE(a.text.find("Connection: close"), std::string::npos);
        EXPECT_GT(a.first_byte_s, 0.9);
        EXPECT_LT(a.first_byte_s, 3.0);
    }
    auto cli = srv.client();
    const auto metrics = cli.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metric_value(metrics->body, R"(vidi_http_requests_total{endpoint="other",method="other",status="408"})"), 2);
    // Nothing of the cut uploads is registered or kept, and an upload sent at once still registers.
    EXPECT_EQ(metric_value(metrics->body, "vidi_upload_store_bytes"), 0);
    EXPECT_EQ(json_body(cli.Get("/v1/videos"))["videos"].size(), 0u);
    const RawAnswer ok =
        post_chunked(srv.port(), kUploadHead.substr(0, kUploadHead.size() - 2), kVideoPart + read_file(video_), 0,
                     "\r\n--XyZ--\r\n");
    EXPECT_EQ(ok.status, 200) << ok.text.substr(0, 300);
}

TEST_F(ServeFramingTest, AnAnswerDecidedBeforeASlowBodyIsStillTheAnswer) {
    options_.limits.min_request_rate = 64 << 10;
    options_.limits.request_rate_grace_ms = 1000;
    options_.limits.max_upload_bytes = 1000;
    options_.access.api_key = "k1";
    InProcessServer srv(engine_, options_);
    // Refused before the body is read (drained), and refused part way (the rest drained): the
    // drain ends at the floor, and the answer is the one decided, closing the connection.
    const RawAnswer key = trickle_upload(srv.port(), kUploadHead + "Authorization: Bearer wrong\r\n", kVideoPart, false);
    EXPECT_EQ(key.status, 401) << key.text.substr(0, 300);
    const std::string big = kVideoPart + std::string(2000, 'v');
    const RawAnswer large = trickle_upload(srv.port(), kUploadHead + "Authorization: Bearer k1\r\n", big, true);
    EXPECT_EQ(large.status, 413) << large.text.substr(0, 300);
    for (const RawAnswer* a : {&key, &large}) {
        EXPECT_NE(a->text.find("Connection: close"), std::string::npos);
        EXPECT_EQ(a->text.find("came slower"), std::string::npos);
    }
}

TEST_F(ServeFramingTest, PipelinedRequestsAreAllAnsweredInOrder) {
    InProcessServer srv(engine_, options_);
    const std::string get = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    RawConnection conn(srv.port());
    const auto t0 = std::chrono::steady_clock::now();
    conn.send(get + "GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" +
              "POST /inference HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              "Content-Length: 5\r\n\r\nq=abc" +
              "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    const RawAnswer a = conn.finish();
    // httplib 0.11 dropped what came after the first request and waited out its 5 s timeout.
    EXPECT_EQ(statuses(a.text), (std::vector<int>{200, 404, 400, 200})) << a.text;
    EXPECT_LT(seconds_since(t0), 2.0);
}

// Where a request is not read to its end, the connection closes after its answer: its next
// bytes are never taken for a request of their own.
TEST_F(ServeFramingTest, BytesAfterARequestReadPartWayAreNeverARequest) {
    InProcessServer srv(engine_, options_);
    const std::string hidden = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // httplib answered a request line it could not parse without reading the headers, which
    // it then took for requests, one 400 each.
    RawConnection bad_line(srv.port());
    bad_line.send("NONSENSE\r\nX-A: 1\r\nX-B: 2\r\n\r\n" + hidden);
    RawAnswer a = bad_line.finish();
    EXPECT_EQ(statuses(a.text), std::vector<int>{400}) << a.text;
    // A chunk's data followed by something else than CRLF: httplib took the body as ending
    // there (truncated) and answered the bytes after it as a request of their own.
    RawConnection bad_chunk(srv.port());
    bad_chunk.send("POST /inference HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n\r\n3\r\nq=aXY\r\n0\r\n\r\n" + hidden);
    a = bad_chunk.finish();
    EXPECT_EQ(statuses(a.text), std::vector<int>{400}) << a.text;
    EXPECT_NE(a.text.find("a chunk's data not followed by CRLF"), std::string::npos) << a.text;
    // An empty Content-Length: httplib dropped it, read no body, and answered the body as a
    // request; an empty Transfer-Encoding likewise, its chunk lines.
    for (const std::string framing : {"Content-Length", "Transfer-Encoding"}) {
        RawConnection empty(srv.port());
        empty.send("POST /inference HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing + ": \r\n\r\n" + hidden);
        a = empty.finish();
        EXPECT_EQ(statuses(a.text), std::vector<int>{400}) << a.text;
        EXPECT_NE(a.text.find("an empty " + framing + " header"), std::string::npos) << a.text;
    }
    // A body the server answers without reading (an unknown route's, past its drain, is read;
    // a request refused before routing is not): the connection closes after the answer.
    RawConnection refused(srv.port());
    refused.send("POST /inference HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=x\r\nContent-Length: " +
                 std::to_string(hidden.size()) + "\r\n\r\n" + hidden);
    a = refused.finish();
    EXPECT_EQ(statuses(a.text).size(), 1u) << a.text;
    EXPECT_NE(a.text.find("Connection: close"), std::string::npos) << a.text;
    EXPECT_EQ(a.text.find("Keep-Alive"), std::string::npos) << a.text;  // it says it closes
    // A HEAD whose error closes the connection: its answer has no body for httplib to fail
    // on, so the closing must come from the answer's own header.
    RawConnection head(srv.port());
    head.send("HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n" + hidden);
    a = head.finish();
    EXPECT_EQ(statuses(a.text), std::vector<int>{400}) << a.text;
    EXPECT_NE(a.text.find("Connection: close"), std::string::npos) << a.text;
}

// Past the connection's last request (httplib's keep-alive count, 5), what else the client
// pipelined is drained before the close, so the answers already sent arrive whole.
TEST_F(ServeFramingTest, AnswersBeforeAClosePastPipelinedRequestsArriveWhole) {
    InProcessServer srv(engine_, options_);
    std::string requests;
    for (int i = 0; i < 8; ++i) requests += "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    RawConnection conn(srv.port());
    conn.send(requests);
    const RawAnswer a = conn.finish();
    EXPECT_EQ(statuses(a.text), std::vector<int>(5, 200)) << a.text;
    EXPECT_NE(a.text.rfind("Connection: close"), std::string::npos);
    EXPECT_GT(a.text.rfind("}"), a.text.rfind("Connection: close"));  // the last body came too
}

// Clients that hold connections without finishing a request (slowly, or not at all) take one
// thread each: one address may hold only its bound of them.
TEST_F(ServeFramingTest, OneAddressHoldsAtMostItsBoundOfConnections) {
    options_.limits.connections_per_address = 2;
    options_.limits.count_loopback_connections = true;
    InProcessServer srv(engine_, options_);
    const std::string get = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    RawConnection first(srv.port()), second(srv.port());
    first.send("GET /health HTTP/1.1\r\n");
    second.send("GET /health HTTP/1.1\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both are being read
    const auto t0 = std::chrono::steady_clock::now();
    RawAnswer third = raw_exchange(srv.port(), get, 3000);
    EXPECT_EQ(third.status, 503) << third.text;
    EXPECT_NE(third.text.find("more than 2 connections at once from this address"), std::string::npos) << third.text;
    EXPECT_NE(third.text.find("Retry-After: 1"), std::string::npos) << third.text;
    EXPECT_LT(seconds_since(t0), 1.0);  // answered at once, not after a read timeout
    // Once one of them leaves, the address may connect again.
    first.finish(true);
    int status = 0;
    for (int i = 0; i < 30 && status != 200; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        status = raw_exchange(srv.port(), get, 3000).status;
    }
    EXPECT_EQ(status, 200);
}

TEST_F(ServeFramingTest, LoopbackClientsAreNotCountedByDefault) {
    InProcessServer srv(engine_, options_);  // 16 an address, loopback not counted
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 20; ++i) {
        held.push_back(std::make_unique<RawConnection>(srv.port()));
        held.back()->send("GET /health HTTP/1.1\r\n");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(srv.client().Get("/health")->status, 200);
}

}  // namespace
}  // namespace vidi::test
