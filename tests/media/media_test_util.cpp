#include "media/media_test_util.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

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

}  // namespace vidi::test
