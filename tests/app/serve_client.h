// Client-side helpers for the `vidi serve` tests: multipart uploads, JSON bodies, and a
// real `vidi serve` child process on a free loopback port.
#pragma once

#include <httplib.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
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

// "HH:MM:SS.ss-HH:MM:SS.ss, ..." from a response's "ranges", as the server must format them.
std::string expected_answer(const nlohmann::json& ranges);

// `vidi serve --port 0 ARGS...` as a child; waits until it prints its port.
class ServeProcess {
public:
    explicit ServeProcess(const std::vector<std::string>& args);
    ~ServeProcess();  // SIGTERM, then SIGKILL if it does not exit within 20 s
    int port() const { return port_; }
    // Sends SIGTERM and returns the exit status (or -signal), waiting up to `seconds`.
    int terminate(int seconds = 30);
    const std::string& log_path() const { return log_path_; }

private:
    pid_t pid_ = -1;
    int port_ = 0;
    std::string log_path_;
};

}  // namespace vidi::test
