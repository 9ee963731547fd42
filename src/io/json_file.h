// Reading JSON files with errors that name the file and the problem.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vidi::io {

nlohmann::json read_json_file(const std::string& path);
void write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace vidi::io
