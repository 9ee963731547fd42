// Python's str.strip() (what a chat template's Jinja `trim` does): Unicode whitespace at
// both ends of UTF-8 text.
#pragma once

#include <string>

namespace vidi::model {

std::string python_strip(const std::string& s);

}  // namespace vidi::model
