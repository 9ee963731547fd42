#include "app/server/multipart.h"

#include <algorithm>
#include <string_view>

#include "app/server/http_error.h"
#include "app/server/text.h"

namespace vidi::server {
namespace {

HttpError malformed(const std::string& why) { return HttpError(400, "malformed multipart body: " + why); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The parameters after the first ';' of a header value: name=token or name="quoted\"text".
// Calls f(lower-case name, value) for each.
template <class F>
void for_each_param(std::string_view v, F f) {
    size_t i = v.find(';');
    while (i != std::string_view::npos && i < v.size()) {
        ++i;
        while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
        const size_t eq = v.find('=', i);
        if (eq == std::string_view::npos) return;
        const std::string name = lower(std::string(trim(v.substr(i, eq - i))));
        std::string value;
        i = eq + 1;
        if (i < v.size() && v[i] == '"') {
            for (++i; i < v.size() && v[i] != '"'; ++i) {
                if (v[i] == '\\' && i + 1 < v.size()) ++i;
                value += v[i];
            }
            if (i >= v.size()) throw malformed("unterminated quoted parameter");
            i = v.find(';', i);
        } else {
            const size_t end = v.find(';', i);
            value = std::string(trim(v.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i)));
            i = end;
        }
        f(name, value);
    }
}

}  // namespace

std::string multipart_boundary(const std::string& content_type) {
    std::string boundary;
    bool found = false;
    for_each_param(content_type, [&](const std::string& name, const std::string& value) {
        if (name == "boundary" && !found) {
            boundary = value;
            found = true;
        }
    });
    if (boundary.empty() || boundary.size() > 70) throw HttpError(400, "multipart body without a usable boundary");
    return boundary;
}

MultipartParser::MultipartParser(const std::string& boundary, size_t max_header_bytes, OnHeader on_header,
                                 OnData on_data)
    : delimiter_("\r\n--" + boundary),
      max_header_bytes_(max_header_bytes),
      on_header_(std::move(on_header)),
      on_data_(std::move(on_data)),
      buf_("\r\n") {}  // the first delimiter may open the body: give it the CRLF the others have

void MultipartParser::parse_header_line(const std::string& line) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) throw malformed("bad part header line");
    const std::string name = lower(std::string(trim(std::string_view(line).substr(0, colon))));
    const std::string_view value = trim(std::string_view(line).substr(colon + 1));
    if (name == "content-disposition") {
        const std::string_view kind = trim(value.substr(0, value.find(';')));
        if (lower(std::string(kind)) != "form-data") throw malformed("a part that is not form-data");
        for_each_param(value, [&](const std::string& key, const std::string& v) {
            if (key == "name") part_.name = v;
            if (key == "filename") {
                part_.filename = v;
                part_.has_filename = true;
            }
        });
    } else if (name == "content-type") {
        part_.content_type = std::string(value);
    }
}

void MultipartParser::feed(const char* data, size_t n) {
    if (state_ == State::Done) return;  // the epilogue is ignored
    buf_.append(data, n);
    step();
}

// Consumes as much of buf_ as the state allows; leaves only what may still turn out to be
// (part of) a delimiter or an unfinished header line.
void MultipartParser::step() {
    const std::string_view delim(delimiter_);
    size_t pos = 0;  // consumed bytes of buf_
    auto rest = [&] { return std::string_view(buf_).substr(pos); };
    for (bool progress = true; progress && state_ != State::Done;) {
        progress = false;
        switch (state_) {
            case State::Preamble:
            case State::Body: {
                const std::string_view r = rest();
                const size_t at = r.find(delim);
                if (at == std::string_view::npos) {
                    // Keep a tail that could be the start of a delimiter.
                    const size_t safe = r.size() >= delim.size() ? r.size() - (delim.size() - 1) : 0;
                    if (state_ == State::Body && safe > 0) on_data_(r.data(), safe);
                    pos += safe;
                    break;
                }
                if (state_ == State::Body && at > 0) on_data_(r.data(), at);
                pos += at + delim.size();
                state_ = State::AfterDelimiter;
                progress = true;
                break;
            }
            case State::AfterDelimiter: {
                std::string_view r = rest();
                while (!r.empty() && (r.front() == ' ' || r.front() == '\t')) {  // transport padding
                    r.remove_prefix(1);
                    ++pos;
                }
                if (r.size() < 2) break;
                if (r.substr(0, 2) == "--") {
                    state_ = State::Done;
                    pos = buf_.size();
                } else if (r.substr(0, 2) == "\r\n") {
                    pos += 2;
                    part_ = PartHeader{};
                    header_bytes_ = 0;
                    state_ = State::Headers;
                    progress = true;
                } else {
                    throw malformed("bad delimiter line");
                }
                break;
            }
            case State::Headers: {
                const std::string_view r = rest();
                const size_t eol = r.find("\r\n");
                if (eol == std::string_view::npos) {
                    if (header_bytes_ + r.size() > max_header_bytes_) throw malformed("part headers too long");
                    break;
                }
                header_bytes_ += eol + 2;
                if (header_bytes_ > max_header_bytes_) throw malformed("part headers too long");
                const std::string line(r.substr(0, eol));
                pos += eol + 2;
                if (line.empty()) {
                    // RFC 7578 §4.2: each part names its field (a part without one was read
                    // as a field named '').
                    if (part_.name.empty()) throw malformed("a part without a Content-Disposition name");
                    on_header_(part_);
                    state_ = State::Body;
                } else {
                    parse_header_line(line);
                }
                progress = true;
                break;
            }
            case State::Done: break;
        }
    }
    buf_.erase(0, pos);
}

void MultipartParser::finish() const {
    if (state_ != State::Done) throw malformed("the body ends before the closing boundary");
}

}  // namespace vidi::server
