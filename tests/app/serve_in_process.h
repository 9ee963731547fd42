// A `vidi serve` Server in this process, on a free loopback port and its own thread, for
// tests of the server's logic against a fake engine.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <memory>
#include <thread>

#include "app/serve_fake_engine.h"
#include "app/server/server.h"
#include "support/test_support.h"

namespace vidi::test {

// A Server on a free loopback port, running on its own thread.
class InProcessServer {
public:
    InProcessServer(FakeEngine& engine, server::ServerOptions opt, size_t queue_size = 16) : queue_(queue_size) {
        engine.progress = [this](const std::string& stage, int64_t done, int64_t total) {
            queue_.progress(stage, done, total);
        };
        opt.host = "127.0.0.1";
        opt.port = 0;
        if (opt.cache.bytes_per_token == 0) opt.cache.bytes_per_token = 100;
        server_ = std::make_unique<server::Server>(engine, queue_, opt);
        port_ = server_->bind();
        thread_ = std::thread([this] { server_->run(); });
    }
    ~InProcessServer() {
        server_->stop();
        thread_.join();
        server_.reset();
    }
    int port() const { return port_; }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(60, 0);
        return c;
    }

private:
    server::JobQueue queue_;
    std::unique_ptr<server::Server> server_;
    int port_ = 0;
    std::thread thread_;
};

// What the in-process server tests start from: a fake engine, a "FAKEVIDEO 20.5" video in the
// test's own directory, and options that make that directory a media root.
class FakeServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        video_ = fake_video("clip.fake", 20.5);
        options_.access.media_roots = {tmp_.path()};
        options_.timeout_s = 30;
    }
    std::string fake_video(const std::string& name, double duration) {
        const std::string path = tmp_.file(name);
        std::ofstream(path) << "FAKEVIDEO " << duration << "\n";
        return path;
    }
    TempDir tmp_{"serve"};
    std::string video_;
    FakeEngine engine_;
    server::ServerOptions options_;
};

}  // namespace vidi::test
