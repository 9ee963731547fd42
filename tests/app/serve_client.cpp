#include "app/serve_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/test_support.h"
#include "vidi/vidi.h"

namespace vidi::test {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

httplib::Result post_form(httplib::Client& cli, const std::string& url, const std::string& file_path,
                          const std::vector<std::pair<std::string, std::string>>& fields) {
    httplib::MultipartFormDataItems items;
    if (!file_path.empty())
        items.push_back({"video", read_file(file_path), file_path.substr(file_path.find_last_of('/') + 1),
                         "video/mp4"});
    for (auto& [k, v] : fields) items.push_back({k, v, "", ""});
    return cli.Post(url.c_str(), items);
}

nlohmann::json json_body(const httplib::Result& r) {
    if (!r) {
        ADD_FAILURE() << "no response: " << httplib::to_string(r.error());
        return nullptr;
    }
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (j.is_discarded()) {
        ADD_FAILURE() << "not JSON (status " << r->status << "): " << r->body.substr(0, 200);
        return nullptr;
    }
    return j;
}

void expect_json_error(const httplib::Result& r, int status, const std::string& words) {
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body;
    nlohmann::json j = json_body(r);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find(words), std::string::npos) << j["error"];
}

void expect_openai_error(const httplib::Result& r, int status, const std::string& words, const std::string& type) {
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body;
    const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(words), std::string::npos) << r->body;
    EXPECT_EQ(j["error"]["type"], type);
    EXPECT_TRUE(j["error"].contains("param") && j["error"].contains("code"));
}

std::vector<SseEvent> parse_events(const std::string& body) {
    std::vector<SseEvent> events;
    size_t at = 0;
    while (at < body.size()) {
        size_t end = body.find("\n\n", at);
        if (end == std::string::npos) end = body.size();
        SseEvent e;
        bool has_data = false;
        std::istringstream block(body.substr(at, end - at));
        for (std::string line; std::getline(block, line);) {
            if (line.rfind("event: ", 0) == 0) e.name = line.substr(7);
            if (line.rfind("data: ", 0) == 0) {
                e.data += line.substr(6);
                has_data = true;
            }
        }
        if (has_data) events.push_back(e);
        at = end + 2;
    }
    return events;
}

double metric_value(const std::string& page, const std::string& name_and_labels) {
    std::istringstream in(page);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
    return std::nan("");
}

std::string expected_answer(const nlohmann::json& ranges) {
    std::string s;
    for (auto& r : ranges)
        s += (s.empty() ? "" : ", ") + format_range({r["start"].get<double>(), r["end"].get<double>()});
    return s;
}

namespace {

// A connected loopback socket, or -1.
int connect_loopback(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

int status_of(const std::string& text) {
    static const std::regex status_line(R"(^HTTP/1\.[01] (\d{3}))");
    std::smatch m;
    return std::regex_search(text, m, status_line) ? std::stoi(m[1]) : 0;
}

}  // namespace

RawConnection::RawConnection(int port, int wait_ms) : fd_(connect_loopback(port)) {
    if (fd_ < 0) return;
    timeval tv{wait_ms / 1000, (wait_ms % 1000) * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    reader_ = std::thread([this] {
        char buf[4096];
        ssize_t n;
        while ((n = recv(fd_, buf, sizeof buf, 0)) > 0) {
            if (out_.text.empty())
                out_.first_byte_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - opened_).count();
            out_.text.append(buf, static_cast<size_t>(n));
        }
        // The server closed (FIN, or RST when it left bytes of ours unread), not the wait running out.
        out_.closed_early = n == 0 || (n < 0 && errno == ECONNRESET);
    });
}

RawConnection::~RawConnection() {
    if (fd_ >= 0) finish(true);
}

bool RawConnection::send(const std::string& bytes) {
    for (size_t at = 0; at < bytes.size();) {
        const ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
        if (n <= 0) return false;
        at += static_cast<size_t>(n);
    }
    return true;
}

bool RawConnection::send_filler(int64_t count, char byte) {
    const std::string piece(64 << 10, byte);
    for (int64_t left = count; left > 0; left -= static_cast<int64_t>(piece.size()))
        if (!send(piece.substr(0, static_cast<size_t>(std::min<int64_t>(left, piece.size()))))) return false;
    return true;
}

RawAnswer RawConnection::finish(bool abandon) {
    if (fd_ < 0) return out_;
    // Not a half close: a peer that stopped sending looks gone to the server (httplib's test).
    if (abandon) shutdown(fd_, SHUT_RDWR);
    reader_.join();
    close(fd_);
    fd_ = -1;
    out_.status = status_of(out_.text);
    return out_;
}

RawAnswer raw_exchange(int port, const std::string& bytes, int wait_ms) {
    RawConnection c(port, wait_ms);
    if (c.connected()) c.send(bytes);
    return c.finish();
}

RawAnswer post_chunked(int port, const std::string& head, const std::string& prefix, int64_t filler_bytes,
                       const std::string& suffix) {
    RawConnection c(port);
    int64_t sent = 0;
    auto chunk = [&](const std::string& data) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", data.size());
        const bool ok = c.send(size + data + "\r\n");
        if (ok) sent += static_cast<int64_t>(data.size());
        return ok;
    };
    bool ok = c.connected() && c.send(head + "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n") &&
              chunk(prefix);
    const std::string zeros(64 << 10, '\0');
    for (int64_t left = filler_bytes; ok && left > 0; left -= static_cast<int64_t>(zeros.size()))
        ok = chunk(zeros.substr(0, static_cast<size_t>(std::min<int64_t>(left, zeros.size()))));
    ok = ok && chunk(suffix) && c.send("0\r\n\r\n");
    RawAnswer out = c.finish(!ok);  // else the server closes after answering (Connection: close)
    out.sent = sent;
    out.closed_early = !ok;
    return out;
}

int64_t rss_bytes(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
    return 0;
}

RssPeak::RssPeak(pid_t pid) : pid_(pid), before_(rss_bytes(pid)), peak_(before_) {
    sampler_ = std::thread([this] {
        while (!done_) {
            peak_ = std::max<int64_t>(peak_, rss_bytes(pid_));
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    });
}

RssPeak::~RssPeak() { growth(); }

int64_t RssPeak::growth() {
    done_ = true;
    if (sampler_.joinable()) sampler_.join();
    return peak_ - before_;
}

ServeProcess::ServeProcess(const std::vector<std::string>& args) {
    static int counter = 0;
    log_path_ = std::string(VIDI_BINARY_DIR) + "/test-tmp/serve-" + std::to_string(getpid()) + "-" +
                std::to_string(++counter) + ".log";
    std::string dir = std::string(VIDI_BINARY_DIR) + "/test-tmp";
    mkdir(dir.c_str(), 0755);
    std::vector<std::string> argv_s = {vidi_binary(), "serve", "--port", "0"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    // Emptied here, before the child starts: the path repeats once process ids come round
    // again, and an earlier server's "listening" line in it would name a port nobody serves.
    FILE* log_file = std::fopen(log_path_.c_str(), "w");
    if (!log_file) throw std::runtime_error("cannot write " + log_path_);
    pid_ = fork();
    if (pid_ == 0) {
        dup2(fileno(log_file), 1);
        dup2(fileno(log_file), 2);
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    std::fclose(log_file);
    // The server prints "listening on http://HOST:PORT" once it is bound.
    const std::regex listening(R"(listening on http://[^:]+:(\d+))");
    for (int i = 0; i < 1200 && port_ == 0; ++i) {
        std::smatch m;
        std::string log = read_file(log_path_);
        if (std::regex_search(log, m, listening)) port_ = std::stoi(m[1]);
        int status;
        if (port_ == 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("vidi serve exited early: " + log);
        }
        if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (port_ == 0) throw std::runtime_error("vidi serve did not start in 60 s: " + read_file(log_path_));
}

int ServeProcess::terminate(int seconds) {
    if (pid_ < 0) return -1;
    kill(pid_, SIGTERM);
    for (int i = 0; i < seconds * 20; ++i) {
        int status;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -SIGKILL;
}

ServeProcess::~ServeProcess() {
    if (pid_ > 0) terminate(20);
}

}  // namespace vidi::test
