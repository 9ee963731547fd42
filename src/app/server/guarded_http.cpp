#include "app/server/guarded_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "app/server/access.h"

namespace vidi::server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kReadAhead = 16 << 10;
// What a client may still send, unread, before the connection closes under it.
constexpr size_t kLingerBytes = 4 << 20;
constexpr milliseconds kLingerTime{2000};

// The request a thread reads now: the pre-routing hook frames its body, the post-routing hook
// decides whether its answer ends the connection, the logger leaves it out when refused.
struct CurrentRequest {
    const GuardedStream* stream = nullptr;
    RequestFraming* framing = nullptr;
    bool closes = false;
    bool draining = false;  // answer_decided()
};
thread_local CurrentRequest t_request;

const char* reason_phrase(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

milliseconds ceil_ms(std::chrono::microseconds us) { return std::chrono::ceil<milliseconds>(us); }

std::string rate_text(uint64_t bytes_a_second) {
    if (bytes_a_second % 1024 == 0) return std::to_string(bytes_a_second / 1024) + " KiB/s";
    return std::to_string(bytes_a_second) + " bytes/s";
}

std::string seconds_text(milliseconds t) {
    char text[32];
    std::snprintf(text, sizeof text, t.count() % 1000 ? "%.1f s" : "%.0f s", static_cast<double>(t.count()) / 1000);
    return text;
}

void address_of(const sockaddr_storage& addr, socklen_t len, std::string& ip, int& port) {
    if (addr.ss_family == AF_INET) port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
    else if (addr.ss_family == AF_INET6) port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
    else return;
    std::array<char, NI_MAXHOST> host{};
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host.data(), host.size(), nullptr, 0,
                    NI_NUMERICHOST) == 0)
        ip = host.data();
}

}  // namespace

std::string connection_address_key(const std::string& ip) {
    if (ip.rfind("::ffff:", 0) == 0 && ip.find('.') != std::string::npos) return ip.substr(7);
    in6_addr a{};
    if (inet_pton(AF_INET6, ip.c_str(), &a) != 1 || IN6_IS_ADDR_LOOPBACK(&a)) return ip;
    std::memset(a.s6_addr + 8, 0, 8);
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &a, text, sizeof text);
    return std::string(text) + "/64";
}

GuardedStream::GuardedStream(int sock, FramingLimits limits, Timeouts timeouts)
    : sock_(sock), framing_(limits), timeouts_(timeouts), buf_(kReadAhead) {}

int GuardedStream::wait(short events, milliseconds timeout) const {
    pollfd p{sock_, events, 0};
    for (;;) {
        const int rc = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, timeout.count())));
        if (rc > 0) return p.revents;
        if (rc == 0 || errno != EINTR) return rc;
    }
}

bool GuardedStream::wait_for_request(milliseconds idle, const std::function<bool()>& running) {
    if (off_ < end_) return true;  // a pipelined request already read
    const auto until = Clock::now() + idle;
    while (running()) {
        const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
        const int rc = wait(POLLIN, std::clamp(left, milliseconds(0), milliseconds(100)));
        if (rc != 0) return rc > 0;
        if (left.count() <= 0) return false;
    }
    return false;
}

void GuardedStream::begin_request() {
    framing_.begin_request();
    head_deadline_ = Clock::now() + timeouts_.head;
}

Clock::duration GuardedStream::rate_allowance() const {
    // (held under 30 years: at a floor of a few bytes a second, terabytes would overflow the clock)
    const double seconds = std::min(1e9, static_cast<double>(taken_) / static_cast<double>(timeouts_.min_rate));
    const auto earned = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    return timeouts_.rate_grace + earned - waited_;
}

bool GuardedStream::wait_readable() {
    milliseconds timeout = ceil_ms(timeouts_.read);
    const bool head = framing_.in_head();
    // Only waiting counts against the floor: a handler that is slow to read costs the client nothing.
    const bool paced = timeouts_.min_rate > 0;
    if (head) timeout = std::min(timeout, std::chrono::ceil<milliseconds>(head_deadline_ - Clock::now()));
    if (paced) timeout = std::min(timeout, std::chrono::ceil<milliseconds>(rate_allowance()));
    const auto t0 = Clock::now();
    // (with no time left, bytes already there are still taken)
    const bool ready = wait(POLLIN, std::max(timeout, milliseconds(0))) > 0;
    if (paced) waited_ += Clock::now() - t0;
    if (ready) return true;
    if (head && Clock::now() >= head_deadline_)
        framing_.refuse(408, "the request line and headers took longer than " + seconds_text(timeouts_.head));
    else if (paced && rate_allowance() <= Clock::duration::zero() && !t_request.draining)
        framing_.refuse(408, "the request came slower than " + rate_text(timeouts_.min_rate) +
                                 " (after the connection's first " + seconds_text(timeouts_.rate_grace) + " of waiting)");
    return false;
}

// POLLRDHUP is the peer's FIN whether or not unread bytes come before it.
bool GuardedStream::peer_closed() const {
    const int events = wait(POLLRDHUP, milliseconds(0));
    return events > 0 && (events & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool GuardedStream::is_readable() const { return off_ < end_ || wait(POLLIN, ceil_ms(timeouts_.read)) > 0; }

ssize_t GuardedStream::read(char* ptr, size_t size) {
    if (refusal() || size == 0) return refusal() ? -1 : 0;
    if (off_ == end_) {
        if (!wait_readable()) return -1;
        const ssize_t n = recv_some(buf_.data(), buf_.size());
        if (n <= 0) return n;
        off_ = 0;
        end_ = static_cast<size_t>(n);
    }
    const size_t k = std::min(size, end_ - off_);
    // Only what httplib takes is framed: the rest may be the connection's next request.
    if (framing_.take(buf_.data() + off_, k) < k) return -1;
    taken_ += k;
    std::memcpy(ptr, buf_.data() + off_, k);
    off_ += k;
    return static_cast<ssize_t>(k);
}

bool GuardedStream::is_writable() const {
    if (refusal() || wait(POLLOUT, ceil_ms(timeouts_.write)) <= 0) return false;
    // Alive unless the peer closed: readable with nothing to read (httplib's test).
    if (off_ < end_ || wait(POLLIN, milliseconds(0)) == 0) return true;
    char byte;
    return recv(sock_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

ssize_t GuardedStream::send_some(const char* ptr, size_t size) const {
    ssize_t n;
    do n = send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);  // the socket's SO_SNDTIMEO makes a signal interrupt it
    return n;
}

ssize_t GuardedStream::recv_some(char* ptr, size_t size) const {
    ssize_t n;
    do n = recv(sock_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t GuardedStream::write(const char* ptr, size_t size) {
    // A refused request's answer is send_refusal()'s, not httplib's.
    if (!is_writable()) return -1;
    return send_some(ptr, size);
}

void GuardedStream::send_refusal() {
    const FramingRefusal& r = *refusal();
    const std::string body = nlohmann::json{{"error", r.message}}.dump();
    const std::string answer = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
                               "\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n" +
                               (r.status == 503 ? "Retry-After: 1\r\n" : "") + "Connection: close\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body;
    for (size_t at = 0; at < answer.size();) {
        if (wait(POLLOUT, ceil_ms(timeouts_.write)) <= 0) return;
        const ssize_t n = send_some(answer.data() + at, answer.size() - at);
        if (n <= 0) return;
        at += static_cast<size_t>(n);
    }
}

void GuardedStream::linger() {
    const bool unread = off_ < end_ || (framing_.begun() && !framing_.complete()) || wait(POLLIN, milliseconds(0)) > 0;
    if (!unread) return;
    shutdown(sock_, SHUT_WR);
    const auto until = Clock::now() + kLingerTime;
    for (size_t drained = 0; drained < kLingerBytes;) {
        const auto left = std::chrono::duration_cast<milliseconds>(until - Clock::now());
        if (left.count() <= 0 || wait(POLLIN, left) <= 0) return;
        const ssize_t n = recv_some(buf_.data(), buf_.size());
        if (n <= 0) return;
        drained += static_cast<size_t>(n);
    }
}

std::string GuardedStream::remote_address() const {
    std::string ip;
    int port = 0;
    get_remote_ip_and_port(ip, port);
    return ip;
}

void GuardedStream::get_remote_ip_and_port(std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) address_of(addr, len, ip, port);
}

void GuardedStream::get_local_ip_and_port(std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) address_of(addr, len, ip, port);
}

void answer_decided() {
    if (t_request.framing) t_request.draining = true;  // (a form parsed outside a request: nothing to drain)
}

bool client_gone() { return t_request.stream && t_request.stream->peer_closed(); }

GuardedHttpServer::GuardedHttpServer() {
    httplib::Server::set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        // As httplib's read_content frames a body (is_chunked_transfer_encoding, then the
        // first Content-Length through strtoull), from the same parsed headers.
        if (t_request.framing)
            t_request.framing->frame_body(strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") == 0,
                                          req.get_header_value<uint64_t>("Content-Length"));
        return pre_routing_ ? pre_routing_(req, res) : HandlerResponse::Unhandled;
    });
    // Called for every answer (routed or not) just before its headers are written.
    httplib::Server::set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (post_routing_) post_routing_(req, res);
        if (!t_request.framing) return;
        if (res.get_header_value("Connection") == "close" || !t_request.framing->complete()) {
            t_request.closes = true;
            res.headers.erase("Connection");  // a multimap: set_header adds
            res.headers.erase("Keep-Alive");
            res.set_header("Connection", "close");
        }
    });
}

void GuardedHttpServer::set_pre_routing_handler(HandlerWithResponse handler) { pre_routing_ = std::move(handler); }

void GuardedHttpServer::set_post_routing_handler(Handler handler) { post_routing_ = std::move(handler); }

void GuardedHttpServer::set_logger(httplib::Logger logger) {
    httplib::Server::set_logger([logger = std::move(logger)](const httplib::Request& req, const httplib::Response& res) {
        if (!(t_request.framing && t_request.framing->refusal())) logger(req, res);
    });
}

bool GuardedHttpServer::serve_request(httplib::Stream& strm, RequestFraming& framing, bool last, bool& closed,
                                      const GuardedStream* peer) {
    struct Current {
        Current(const GuardedStream* s, RequestFraming* f) { t_request = {s, f, false, false}; }
        ~Current() { t_request = {}; }
    } current(peer, &framing);
    const bool ok = process_request(strm, last, closed, nullptr);
    closed = closed || t_request.closes;
    return ok;
}

bool GuardedHttpServer::take_address_slot(const std::string& address) {
    if (guard_.connections_per_address == 0) return true;
    std::lock_guard lock(slots_mu_);
    size_t& n = connections_of_[address];
    if (n >= guard_.connections_per_address) return false;
    ++n;
    return true;
}

void GuardedHttpServer::give_address_slot(const std::string& address) {
    std::lock_guard lock(slots_mu_);
    const auto it = connections_of_.find(address);
    if (it != connections_of_.end() && --it->second == 0) connections_of_.erase(it);
}

// httplib's keep-alive loop (process_server_socket_core), with one stream for the connection,
// closed after a refused request or one not read exactly to its end.
bool GuardedHttpServer::process_and_close_socket(socket_t sock) {
    using std::chrono::seconds;
    using std::chrono::microseconds;
    GuardedStream::Timeouts timeouts = guard_.timeouts;
    timeouts.read = seconds(read_timeout_sec_) + microseconds(read_timeout_usec_);
    timeouts.write = seconds(write_timeout_sec_) + microseconds(write_timeout_usec_);
    GuardedStream strm(sock, guard_.framing, timeouts);
    struct Closer {
        ~Closer() {
            if (linger) strm.linger();
            shutdown(sock, SHUT_RDWR);
            close(sock);
        }
        GuardedStream& strm;
        socket_t sock;
        bool linger;
    } closer{strm, sock, true};
    const std::string remote = strm.remote_address();
    const auto answer_refusal = [&] {
        if (guard_.on_refused) guard_.on_refused(remote, *strm.refusal());
        strm.send_refusal();
    };
    // One address holding every thread would keep everyone else out (a slow client holds each
    // for its 20 s of grace, and longer at the rate floor).
    const std::string address = connection_address_key(remote);
    const bool counted = guard_.count_loopback || !is_loopback_address(address);
    if (counted && !take_address_slot(address)) {
        strm.framing().refuse(503, "more than " + std::to_string(guard_.connections_per_address) +
                                       " connections at once from this address; try again when one has ended");
        answer_refusal();
        closer.linger = false;  // at once: a thread waiting on it is what the bound saves
        return false;
    }
    struct Slot {
        ~Slot() {
            if (counted) server.give_address_slot(address);
        }
        GuardedHttpServer& server;
        const std::string& address;
        bool counted;
    } slot{*this, address, counted};
    const auto running = [this] { return svr_sock_ != INVALID_SOCKET; };
    bool ok = false;
    for (size_t left = keep_alive_max_count_; left > 0 && running(); --left) {
        if (!strm.wait_for_request(seconds(keep_alive_timeout_sec_), running)) break;
        strm.begin_request();
        bool closed = false;
        ok = serve_request(strm, strm.framing(), left == 1, closed, &strm);
        if (strm.refusal()) {
            answer_refusal();
            return false;
        }
        if (!ok || closed || !strm.request_complete()) break;
    }
    return ok;
}

}  // namespace vidi::server
