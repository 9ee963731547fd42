// Helpers for the media tests: test videos made with the ffmpeg CLI, and raw reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "vidi/tensor.h"

namespace vidi::test {

// Runs `ffmpeg -v error -y <args>`; fails the test (via exception) if it fails.
void ffmpeg_cli(const std::string& args);
// Reads a whole file as bytes.
std::vector<uint8_t> read_bytes(const std::string& path);
// Writes bytes to a file.
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
// Writes the files' bytes one after the other into `out` (MPEG-TS pieces join that way).
void join_files(const std::vector<std::string>& parts, const std::string& out);
// `clean` with `runs` runs of 200 zero bytes spread over the middle of the file (fixed seed),
// written to `out`: a damaged stream whose index (at an MP4's end) survives.
void write_damaged_copy(const std::string& clean, const std::string& out, int runs);

// Every frame the ffmpeg CLI decodes from `video` as packed RGB24, in output order, with
// `options` placed after the input (filters, -sws_flags); timestamps passed through.
std::vector<uint8_t> cli_rgb_frames(const std::string& video, const std::string& options = "");
// The sampled frames our FrameStream hands out (next_rgb), RGB24 [h, w, 3] each.
std::vector<Tensor> sampled_rgb(const std::string& video);
// Frame i (of `width`×`height` RGB24) of a CLI decode as a tensor.
Tensor rgb_frame(const std::vector<uint8_t>& frames, int64_t i, int width, int height);
// Bytes that differ between two tensors of one shape and dtype (SIZE_MAX when they do not match).
size_t bytes_differing(const Tensor& a, const Tensor& b);

}  // namespace vidi::test
