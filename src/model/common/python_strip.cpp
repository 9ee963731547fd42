#include "model/common/python_strip.h"

#include "vidi/error.h"

namespace vidi::model {

namespace {

// Length in bytes of the whitespace code point at s[i] as Python's str.isspace() sees it
// (Jinja's `trim` is str.strip()), or 0. ASCII: \t \n \v \f \r, \x1c-\x1f and space; then
// U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F and U+3000.
size_t space_at(const std::string& s, size_t i) {
    const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
    const unsigned c = b(0);
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
    if (c == 0xc2 && (b(1) == 0x85 || b(1) == 0xa0)) return 2;
    if (c == 0xe1 && b(1) == 0x9a && b(2) == 0x80) return 3;
    if (c == 0xe2 && b(1) == 0x80 && (b(2) <= 0x8a || b(2) == 0xa8 || b(2) == 0xa9 || b(2) == 0xaf)) return 3;
    if (c == 0xe2 && b(1) == 0x81 && b(2) == 0x9f) return 3;
    if (c == 0xe3 && b(1) == 0x80 && b(2) == 0x80) return 3;
    return 0;
}

bool ends_with_space(const std::string& s, size_t end, size_t& begin) {
    for (size_t len = 1; len <= 3 && len <= end; ++len)
        if (space_at(s, end - len) == len) {
            begin = end - len;
            return true;
        }
    return false;
}

}  // namespace

std::string python_strip(const std::string& s) {
    size_t a = 0, b = s.size(), n;
    while (a < b && (n = space_at(s, a)) > 0) a += n;
    size_t before;
    while (b > a && ends_with_space(s, b, before)) b = before;
    return s.substr(a, b - a);
}

std::string query_without_dot(const std::string& query) {
    const std::string q = !query.empty() && query.back() == '.' ? query.substr(0, query.size() - 1) : query;
    VIDI_CHECK(!python_strip(q).empty(), "the retrieval query is empty");
    return q;
}

}  // namespace vidi::model
