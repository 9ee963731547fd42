// Client-side helpers for the `vidi serve` tests: multipart uploads, JSON bodies, and a
// real `vidi serve` child process on a free loopback port.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace vidi::test {

std::string read_file(const std::string& path);

// POST multipart to `url`: the `video` file part (when file_path is not empty) plus fields.
httplib::Result post_form(httplib::Client& cli, const std::string& url, const std::string& file_path,
                          const std::vector<std::pair<std::string, std::string>>& fields);

// The JSON body of a response (fails the test and returns null when it is not JSON).
nlohmann::json json_body(const httplib::Result& r);

// Expects a JSON error response: the status code and an "error" message containing `words`.
void expect_json_error(const httplib::Result& r, int status, const std::string& words);
// An OpenAI-shaped error: {"error": {"message", "type", "param", "code"}}.
void expect_openai_error(const httplib::Result& r, int status, const std::string& words,
                         const std::string& type = "invalid_request_error");

// One server-sent event: its name ("" for a plain data event) and data line.
struct SseEvent {
    std::string name;
    std::string data;
    nlohmann::json json() const { return nlohmann::json::parse(data, nullptr, false); }
};
// The events of a whole text/event-stream body (comments skipped).
std::vector<SseEvent> parse_events(const std::string& body);

// One sample of a Prometheus text page: `name{labels}` -> value; NaN when absent.
double metric_value(const std::string& page, const std::string& name_and_labels);

// "HH:MM:SS.ss-HH:MM:SS.ss, ..." from a response's "ranges", as the server must format them.
std::string expected_answer(const nlohmann::json& ranges);

// A request written by hand on a loopback socket: `head` (request line and headers, no
// blank line), then a chunked body: `prefix`, `filler_bytes` zero bytes, `suffix`, in chunks
// of 64 KiB, while another thread reads the answer. Stops sending when the server closes.
struct RawAnswer {
    int status = 0;          // 0: no status line came back
    std::string text;        // everything the server sent
    int64_t sent = 0;        // body bytes the server took
    bool closed_early = false;  // the server closed before the whole body was sent
    double first_byte_s = -1;   // RawConnection: seconds from connecting to the answer's first byte
};
RawAnswer post_chunked(int port, const std::string& head, const std::string& prefix, int64_t filler_bytes,
                       const std::string& suffix);

// A loopback connection written by hand while a thread collects what the server sends,
// until the server closes or `wait_ms` pass without a byte.
class RawConnection {
public:
    explicit RawConnection(int port, int wait_ms = 30000);
    ~RawConnection();
    bool connected() const { return fd_ >= 0; }
    // Writes `bytes`; false once the server no longer takes them (it closed).
    bool send(const std::string& bytes);
    // Writes `count` copies of `byte`, in 64 KiB pieces.
    bool send_filler(int64_t count, char byte);
    // Waits until the server closes (or the wait runs out); what came back. `abandon`: close both
    // ways at once instead (the request was not sent whole).
    RawAnswer finish(bool abandon = false);

private:
    int fd_ = -1;
    RawAnswer out_;
    std::chrono::steady_clock::time_point opened_ = std::chrono::steady_clock::now();
    std::thread reader_;
};

// `bytes` written as they are on a loopback socket, then what comes back until the server
// closes or `wait_ms` pass without a byte (closed_early: the server closed).
RawAnswer raw_exchange(int port, const std::string& bytes, int wait_ms);

// Resident memory of a process in bytes (VmRSS), 0 when it cannot be read.
int64_t rss_bytes(pid_t pid);

// A process's resident memory sampled every 5 ms, from construction until growth() is asked.
class RssPeak {
public:
    explicit RssPeak(pid_t pid);
    ~RssPeak();
    int64_t before() const { return before_; }
    // Stops sampling: how far the peak rose above the first sample.
    int64_t growth();

private:
    const pid_t pid_;
    const int64_t before_;
    std::atomic<bool> done_{false};
    std::atomic<int64_t> peak_;
    std::thread sampler_;
};

// `vidi serve --port 0 ARGS...` as a child; waits until it prints its port.
class ServeProcess {
public:
    explicit ServeProcess(const std::vector<std::string>& args);
    ~ServeProcess();  // SIGTERM, then SIGKILL if it does not exit within 20 s
    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    // Sends SIGTERM and returns the exit status (or -signal), waiting up to `seconds`.
    int terminate(int seconds = 30);
    const std::string& log_path() const { return log_path_; }

private:
    pid_t pid_ = -1;
    int port_ = 0;
    std::string log_path_;
};

}  // namespace vidi::test
