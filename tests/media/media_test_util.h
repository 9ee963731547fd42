// Helpers for the media tests: test videos made with the ffmpeg CLI, and raw reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace vidi::test {

// Runs `ffmpeg -v error -y <args>`; fails the test (via exception) if it fails.
void ffmpeg_cli(const std::string& args);
// Reads a whole file as bytes.
std::vector<uint8_t> read_bytes(const std::string& path);
// Writes bytes to a file.
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace vidi::test
