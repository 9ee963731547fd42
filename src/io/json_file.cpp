#include "io/json_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "io/files.h"
#include "vidi/error.h"

namespace vidi::io {

nlohmann::json read_json_file(const std::string& path) {
    const std::string text = read_regular_file(path);  // a FIFO or /dev/zero: refused, not read
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(path, ": malformed JSON: ", e.what());
    }
}

void write_json_file(const std::string& path, const nlohmann::json& j) {
    std::ofstream out(path, std::ios::binary);
    if (!out) fail(path, ": cannot create: ", std::strerror(errno));
    out << json_text(j, 2) << "\n";
    if (!out) fail(path, ": write failed");
}

std::string json_text(const nlohmann::json& j, int indent) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vidi::io
