// A `vidi serve` Server in this process, on a free loopback port and its own thread, for
// tests of the server's logic against a fake engine.
#pragma once

#include <httplib.h>

#include <memory>
#include <thread>

#include "app/serve_fake_engine.h"
#include "app/server/server.h"

namespace vidi::test {

// A Server on a free loopback port, running on its own thread.
class InProcessServer {
public:
    InProcessServer(FakeEngine& engine, server::ServerOptions opt, size_t queue_size = 16) : queue_(queue_size) {
        engine.progress = [this](const std::string&, int64_t, int64_t) { queue_.throw_if_cancelled(); };
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

}  // namespace vidi::test
