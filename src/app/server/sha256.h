// Content hashes for the per-video cache: the same bytes give the same key, whatever
// the file is called or where it was uploaded from.
#pragma once

#include <string>

namespace vidi::server {

// Lower-case hex SHA-256 of a file's content; throws vidi::Error when it cannot be read.
std::string sha256_file(const std::string& path);
// Lower-case hex SHA-256 of a byte string.
std::string sha256_bytes(const std::string& bytes);

}  // namespace vidi::server
