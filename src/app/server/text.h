// Small text helpers the server's parsers share (HTTP names and values compare ASCII
// case-insensitively).
#pragma once

#include <cctype>
#include <string>

namespace vidi::server {

inline std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace vidi::server
