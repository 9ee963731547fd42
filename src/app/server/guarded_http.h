// httplib's Server with each connection read through one GuardedStream, which holds the
// request's framing bounds (request_framing.h) and a deadline on its headers while httplib
// parses, and keeps what it read ahead for the connection's next request. The body's framing
// comes from the headers as httplib parsed them (a pre-routing hook, before any body byte);
// a connection goes on only after a request read exactly to its end.
//
// cpp-httplib 0.11 (Debian 12) read a fresh SocketStream per request: bytes of a pipelined
// request that arrived with the one before were dropped, and the connection then waited out
// its read timeout. Its readers kept any line whole before measuring it, a client sending
// headers a byte every few seconds held a connection thread for as long as it liked, and a
// request it answered without reading all of it (a request line it could not parse, a chunk
// not followed by CRLF) left the rest to be taken for the next request.
#pragma once

#include <httplib.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/server/request_framing.h"

namespace vidi::server {

// What connections from one client are counted by: an IPv4 address (also when it comes
// IPv4-mapped on a dual-stack socket), or an IPv6 address's /64, the block one client
// usually holds whole ("2001:db8:1:2::/64"); loopback addresses as they are.
std::string connection_address_key(const std::string& ip);

class GuardedStream final : public httplib::Stream {
public:
    struct Timeouts {
        std::chrono::microseconds read{5'000'000}, write{5'000'000};  // per read or write, as httplib's
        std::chrono::milliseconds head{20'000};  // the request line and headers, from their first byte
        // A connection's requests (their heads and bodies) must come at least this fast
        // (bytes a second; 0: no floor), counting only the time spent waiting for their bytes,
        // beyond a first `rate_grace` a connection (not a request: keep-alive renews nothing).
        uint64_t min_rate = 0;
        std::chrono::milliseconds rate_grace{20'000};
    };
    GuardedStream(int sock, FramingLimits limits, Timeouts timeouts);

    // Waits up to `idle` for the next request's first byte (true), polling `running` so that a
    // server that stops does not wait for idle connections.
    bool wait_for_request(std::chrono::milliseconds idle, const std::function<bool()>& running);
    // The next byte starts a request: its framing and its headers' deadline begin.
    void begin_request();
    // Set once this request broke a bound; httplib then reads and writes nothing more.
    const std::optional<FramingRefusal>& refusal() const { return framing_.refusal(); }
    // Whether httplib read this request exactly to its end (else the connection must close:
    // its next bytes would be taken for a request).
    bool request_complete() const { return framing_.complete(); }
    // Answers the refusal (JSON, Connection: close).
    void send_refusal();
    // Before the socket closes: where bytes the client sent may be left unread (a request not
    // read to its end, pipelined requests past the last answer), stops sending and reads on
    // for a moment, so that the client gets its answers rather than a reset.
    void linger();
    // Whether the client has closed its end (or reset it), even behind bytes it sent that
    // nobody has read: a stray byte or a pipelined request does not hide that it left. A
    // client that half-closes to wait for its answer looks the same; as nginx, such a client
    // is taken to have gone.
    bool peer_closed() const;
    // The peer's address, as httplib gives it in Request::remote_addr.
    std::string remote_address() const;
    RequestFraming& framing() { return framing_; }

    bool is_readable() const override;
    bool is_writable() const override;
    ssize_t read(char* ptr, size_t size) override;
    ssize_t write(const char* ptr, size_t size) override;
    void get_remote_ip_and_port(std::string& ip, int& port) const override;
    void get_local_ip_and_port(std::string& ip, int& port) const override;
    socket_t socket() const override { return sock_; }

private:
    // poll() for `events` up to `timeout`: the events that came (> 0), 0 timed out, < 0 error.
    int wait(short events, std::chrono::milliseconds timeout) const;
    // Waits for readable bytes within the read timeout, the headers' deadline and what the
    // rate floor still allows.
    bool wait_readable();
    // How much longer this connection's requests may be waited for: the grace, plus the time
    // their bytes so far earned at the floor rate, less the time already waited.
    std::chrono::steady_clock::duration rate_allowance() const;
    // send() and recv() again where a signal interrupted them.
    ssize_t send_some(const char* ptr, size_t size) const;
    ssize_t recv_some(char* ptr, size_t size) const;

    int sock_;
    RequestFraming framing_;
    Timeouts timeouts_;
    std::chrono::steady_clock::time_point head_deadline_{};
    std::chrono::steady_clock::duration waited_{};  // in wait_readable, over the connection's requests
    uint64_t taken_ = 0;                              // bytes of its requests httplib took
    std::vector<char> buf_;  // read ahead; kept across the connection's requests
    size_t off_ = 0, end_ = 0;
};

// The answer to the request this thread serves is decided (an error), and what is still read of
// its body is drained: a client too slow for the rate floor then ends the drain (the answer goes
// out, closing the connection) rather than turning the answer into a 408.
void answer_decided();

// Whether the client of the request this thread serves has closed its connection
// (GuardedStream::peer_closed): an answer sent whole at its end stops its work then, as a
// stream does when a write fails. False outside a request.
bool client_gone();

class GuardedHttpServer : public httplib::Server {
public:
    struct Guard {
        FramingLimits framing;
        // Each connection's stream's; its read and write timeouts are httplib's settings.
        GuardedStream::Timeouts timeouts;
        // Connections served at once from one client address (0: no bound); past it a
        // connection gets 503 at once. Loopback clients (a reverse proxy, local pipelines)
        // are not counted unless count_loopback.
        size_t connections_per_address = 0;
        bool count_loopback = false;
        // Each refused request, on its connection's thread, before the answer is sent.
        std::function<void(const std::string& remote_address, const FramingRefusal&)> on_refused;
    };
    GuardedHttpServer();
    void set_guard(Guard guard) { guard_ = std::move(guard); }
    // httplib's logger, except for requests the guard refused (on_refused reports those).
    void set_logger(httplib::Logger logger);
    // httplib's pre-routing handler, after the guard has taken the body's framing from the
    // headers as httplib parsed them (before any byte of the body is read).
    void set_pre_routing_handler(HandlerWithResponse handler);
    // httplib's post-routing handler, before the guard's: an answer that says
    // "Connection: close", or one to a request not read to its end, ends the connection (and
    // then says so, without Keep-Alive).
    void set_post_routing_handler(Handler handler);

    // One request read from `strm`, whose bytes `framing` follows (begun already): what each
    // request of a connection goes through; `last`: the connection's last. `closed`: the
    // connection must end after it. `peer`: the connection client_gone() looks at (none for
    // the fuzzer's in-memory stream).
    bool serve_request(httplib::Stream& strm, RequestFraming& framing, bool last, bool& closed,
                       const GuardedStream* peer = nullptr);

private:
    bool process_and_close_socket(socket_t sock) override;
    // A connection from `address` begins (false: the address is at its bound) or ends.
    bool take_address_slot(const std::string& address);
    void give_address_slot(const std::string& address);

    Guard guard_;
    HandlerWithResponse pre_routing_;
    Handler post_routing_;
    std::mutex slots_mu_;
    std::unordered_map<std::string, size_t> connections_of_;  // counted addresses with a connection
};

}  // namespace vidi::server
