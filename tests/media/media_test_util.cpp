#include "media/media_test_util.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "media/media.h"

namespace vidi::test {

void ffmpeg_cli(const std::string& args) {
    std::string out;
    const int rc = run_command("ffmpeg -nostdin -hide_banner -v error -y " + args, &out);
    if (rc != 0) throw std::runtime_error("ffmpeg " + args + " failed: " + out);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error("cannot write " + path);
}

void join_files(const std::vector<std::string>& parts, const std::string& out) {
    std::vector<uint8_t> all;
    for (const std::string& p : parts) {
        const std::vector<uint8_t> bytes = read_bytes(p);
        all.insert(all.end(), bytes.begin(), bytes.end());
    }
    write_bytes(out, all);
}

void write_damaged_copy(const std::string& clean, const std::string& out, int runs) {
    std::vector<uint8_t> bytes = read_bytes(clean);
    uint32_t h = 7;
    for (int run = 0; run < runs; ++run) {
        h = h * 1664525u + 1013904223u;
        const size_t at = bytes.size() / 8 + (h >> 8) % (bytes.size() * 5 / 8);
        std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(at), 200, uint8_t(0));
    }
    write_bytes(out, bytes);
}

std::vector<uint8_t> cli_rgb_frames(const std::string& video, const std::string& options) {
    TempDir tmp("cli");
    ffmpeg_cli("-i " + video + " " + options + " -fps_mode passthrough -f rawvideo -pix_fmt rgb24 " + tmp.file("all.rgb"));
    return read_bytes(tmp.file("all.rgb"));
}

std::vector<Tensor> sampled_rgb(const std::string& video) {
    media::FrameStream stream(video, 32);
    std::vector<Tensor> out;
    Tensor rgb;
    int64_t p = 0;
    while (stream.next_rgb(rgb, p)) out.push_back(rgb);
    return out;
}

Tensor rgb_frame(const std::vector<uint8_t>& frames, int64_t i, int width, int height) {
    const size_t bytes = static_cast<size_t>(width) * height * 3;
    if (frames.size() < bytes * static_cast<size_t>(i + 1))
        throw std::runtime_error("the CLI decoded fewer than " + std::to_string(i + 1) + " frames");
    Tensor t = Tensor::empty({height, width, 3}, DType::u8);
    std::memcpy(t.data<uint8_t>(), frames.data() + bytes * static_cast<size_t>(i), bytes);
    return t;
}

size_t bytes_differing(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape() || a.dtype() != b.dtype()) return SIZE_MAX;
    const auto* x = static_cast<const uint8_t*>(a.raw());
    const auto* y = static_cast<const uint8_t*>(b.raw());
    size_t n = 0;
    for (size_t i = 0; i < a.nbytes(); ++i) n += x[i] != y[i];
    return n;
}

}  // namespace vidi::test
