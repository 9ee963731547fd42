// Reading JSON files with errors that name the file and the problem, and typed lookups of
// config keys whose errors name the file and the key.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "vidi/error.h"

namespace vidi::io {

// A regular file of at most kMaxTextFileBytes (io/files.h): a FIFO, a device or a huge file
// in a checkpoint is an error naming it, not a hang or an endless read.
nlohmann::json read_json_file(const std::string& path);
void write_json_file(const std::string& path, const nlohmann::json& j);

// JSON text whatever its strings hold: bytes that are not UTF-8 (a directory's name in a
// report) become U+FFFD instead of making dump() throw. indent -1: compact.
std::string json_text(const nlohmann::json& j, int indent = -1);

// j[key] as T; a missing key or a value of the wrong type is an error naming `where` and the key.
template <class T>
T json_get(const nlohmann::json& j, const char* key, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) fail(where, ": missing key \"", key, "\"");
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)  // nlohmann reads true as 1
        if (j[key].is_boolean()) fail(where, ": key \"", key, "\" has the wrong type (", j[key].dump(), ")");
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
        // nlohmann converts any number to T unchecked (a float outside T's range is undefined
        // behaviour, 3.7 silently becomes 3): only whole numbers T can hold are accepted.
        const nlohmann::json& v = j[key];
        if (v.is_number()) {
            const double d = v.get<double>(), lo = static_cast<double>(std::numeric_limits<T>::min());
            if (!(std::isfinite(d) && d == std::trunc(d) && d >= lo && d < -lo))
                fail(where, ": key \"", key, "\" must be a whole number that fits (", v.dump(), ")");
            return v.is_number_integer() ? static_cast<T>(v.get<int64_t>()) : static_cast<T>(d);
        }
    }
    try {
        return j[key].get<T>();
    } catch (const nlohmann::json::exception&) {
        fail(where, ": key \"", key, "\" has the wrong type (", j[key].dump(), ")");
    }
}

// The same with a fallback for a missing (or null) key.
template <class T>
T json_get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    return json_get<T>(j, key, where);
}

// A size from a config: positive, and at most `most` (2^20 unless said: past any released
// model, and products of two such sizes in int arithmetic would wrap long before 2^31).
constexpr int kMostConfigSize = 1 << 20;
inline void require_positive(int v, const char* key, const std::string& where, int most = kMostConfigSize) {
    if (v <= 0) fail(where, ": \"", key, "\" must be positive, got ", v);
    if (v > most) fail(where, ": \"", key, "\" is ", v, ", more than the ", most, " this engine takes");
}

}  // namespace vidi::io
