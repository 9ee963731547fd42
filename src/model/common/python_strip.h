// Python's str.strip() (what a chat template's Jinja `trim` does): Unicode whitespace at
// both ends of UTF-8 text; and the official scripts' handling of a retrieval query.
#pragma once

#include <string>

namespace vidi::model {

std::string python_strip(const std::string& s);

// The query as both official scripts put it into their retrieval question: one trailing '.'
// dropped, nothing else (no whitespace strip). Refusing a query that is blank then is ours
// (the scripts would ask about nothing).
std::string query_without_dot(const std::string& query);

}  // namespace vidi::model
