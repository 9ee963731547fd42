#include "app/server/sse.h"

#include <httplib.h>

namespace vidi::server {
namespace {

// Bytes at the end of `s` that do not make a whole UTF-8 character yet, plus a trailing
// U+FFFD (EF BF BD): what a character cut between tokens decodes as.
size_t unfinished_tail(const std::string& s) {
    size_t n = s.size();
    while (n >= 3 && s.compare(n - 3, 3, "\xEF\xBF\xBD") == 0) n -= 3;
    // A lead byte announcing more continuation bytes than follow it.
    for (size_t back = 1; back <= 4 && back <= n; ++back) {
        const auto c = static_cast<unsigned char>(s[n - back]);
        if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
        const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need > back) n -= back;
        break;
    }
    return s.size() - n;
}

}  // namespace

bool write_event(httplib::DataSink& sink, const std::string& data, const std::string& event) {
    std::string out;
    if (!event.empty()) out += "event: " + event + "\n";
    out += "data: " + data + "\n\n";
    return sink.write(out.data(), out.size());
}

bool write_comment(httplib::DataSink& sink, const std::string& text) {
    const std::string out = ": " + text + "\n\n";
    return sink.write(out.data(), out.size());
}

void event_stream_headers(httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
}

std::string TextDeltas::next(const std::string& text, bool final) {
    if (text.compare(0, sent_.size(), sent_) != 0 || text.size() < sent_.size()) return {};
    const size_t end = final ? text.size() : text.size() - unfinished_tail(text);
    if (end <= sent_.size()) return {};
    std::string delta = text.substr(sent_.size(), end - sent_.size());
    sent_ += delta;
    return delta;
}

}  // namespace vidi::server
