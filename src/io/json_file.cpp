#include "io/json_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "vidi/error.h"

namespace vidi::io {

nlohmann::json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, ": cannot open: ", std::strerror(errno));
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return nlohmann::json::parse(ss.str());
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
