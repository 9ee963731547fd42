// Server-sent events (text/event-stream): what EventSource, the OpenAI clients and the page
// read. An event is an optional "event: NAME" line and one "data: …" line, then a blank line.
#pragma once

#include <string>

namespace httplib {
class DataSink;
struct Response;
}  // namespace httplib

namespace vidi::server {

// False when the client is gone. `data` must hold no newline (a JSON dump holds none).
bool write_event(httplib::DataSink& sink, const std::string& data, const std::string& event = "");
// ": text" and a blank line: ignored by clients, but it finds a client that went away.
bool write_comment(httplib::DataSink& sink, const std::string& text);
// Headers of an event stream: no caching, no buffering by a proxy (nginx: X-Accel-Buffering).
void event_stream_headers(httplib::Response& res);

// The new part of an answer that grows token by token, ready to send: up to the last whole
// UTF-8 character (a character split over tokens decodes as U+FFFD or a cut sequence until its
// last byte arrives). If the decoded text ever rewrites what was sent, nothing more is sent
// until the final text, whose unsent rest (when it still extends what was sent) ends the stream.
class TextDeltas {
public:
    std::string next(const std::string& text, bool final);
    const std::string& sent() const { return sent_; }

private:
    std::string sent_;
};

}  // namespace vidi::server
