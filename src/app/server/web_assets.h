// The web page's files (src/app/web), embedded into the binary at build time by
// src/app/web/embed.cmake.
#pragma once

#include <string_view>

namespace vidi::server {

struct WebAsset {
    std::string_view path;          // "/index.html", "/app.js", ...
    std::string_view content_type;
    std::string_view body;
};

// Null when there is no such file.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace vidi::server
