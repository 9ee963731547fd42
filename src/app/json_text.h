// JSON text of what the CLI prints and the server answers, whatever its strings hold: bytes
// that are not UTF-8 (a file name, a query, a path quoted in a message) become U+FFFD instead
// of making nlohmann's dump() throw after the work is done. (The app layer includes only the
// public API and its own code; io::json_text is the same for the layers below.)
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vidi::app {

// indent -1: compact.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// `text` with every byte sequence that is not UTF-8 replaced by U+FFFD (the replacing dump
// does the check; reading the JSON string back undoes its escapes).
inline std::string utf8_text(const std::string& text) {
    return nlohmann::json::parse(json_text(text)).get<std::string>();
}

}  // namespace vidi::app
