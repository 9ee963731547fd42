// Content hashes for the per-video cache: the same bytes give the same key, whatever
// the file is called or where it was uploaded from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace vidi::server {

// An incremental SHA-256 (OpenSSL): feed() any number of times, then hex() once.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    void feed(const void* data, size_t n);
    std::string hex();  // lower-case hex digest

private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
};

// Bytes hashed so far and the file's size, after each MiB read; it may throw to stop.
using HashProgress = std::function<void(int64_t done, int64_t total)>;
// Lower-case hex SHA-256 of an open file's content, read from offset 0 (pread: the
// descriptor's offset stays); throws vidi::Error on a read error.
std::string sha256_fd(int fd, const HashProgress& progress = nullptr);
// Lower-case hex SHA-256 of a byte string.
std::string sha256_bytes(const std::string& bytes);

}  // namespace vidi::server
