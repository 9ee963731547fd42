// The OpenAI-compatible part of the API (docs/server.md, "OpenAI-compatible endpoints"):
// POST /v1/chat/completions for one user turn about a video given as a `video_url` content
// part, streamed as server-sent events when asked, and GET /v1/models. What a request may
// hold is checked here, each refusal naming the field; the answer's `vidi` field carries what
// the OpenAI shapes have no place for (the parsed ranges of a retrieval, timings).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "vidi/vidi.h"

namespace vidi::server {

// "HH:MM:SS-HH:MM:SS, ..." (retrieved ranges as every answer of the API writes them): whole
// seconds, truncated as the official script prints them (the exact seconds are in "ranges").
std::string ranges_text(const std::vector<TimeRange>& ranges);

struct ChatRequest {
    Question question;                     // the user's text; task from "vidi": {"task": …}
    std::optional<std::string> video_url;  // the video_url part's url, when there is one
    bool stream = false;
    bool include_usage = false;            // stream_options.include_usage
};

// Checks and reads a chat completion request. `model` is the served model's id (the request's
// "model" must name it, or be absent); max_tokens (or max_completion_tokens) defaults to, and
// may not exceed, `max_new_tokens`; the user's text holds at most `max_text_bytes` (413
// past it: the native API's field limit). Throws HttpError (400, 413, or 404 for another model).
ChatRequest parse_chat_request(const nlohmann::json& body, const std::string& model, int max_new_tokens,
                               size_t max_text_bytes);

// "chatcmpl-" and 24 random hex digits.
std::string completion_id();

// What the `vidi` field of an answer holds: the task, for retrieval the ranges (seconds) and
// their "HH:MM:SS.ss-HH:MM:SS.ss" text, the video's duration and id, the timings.
nlohmann::json vidi_field(Task task, const Answer& a, const std::string& video_id, const nlohmann::json& timings);

// A whole chat.completion (non-streaming answer).
nlohmann::json chat_completion(const std::string& id, int64_t created, const std::string& model, const Answer& a,
                               const char* finish_reason, nlohmann::json vidi);
// One chat.completion.chunk of a stream: a delta of the message ("role" and/or "content"), or
// the last one with its finish_reason and `vidi` field.
nlohmann::json chat_chunk(const std::string& id, int64_t created, const std::string& model,
                          const nlohmann::json& delta, const char* finish_reason = nullptr,
                          nlohmann::json vidi = nullptr);
// The usage chunk (stream_options.include_usage): no choices.
nlohmann::json usage_chunk(const std::string& id, int64_t created, const std::string& model, const Answer& a);
// "length" when the answer used all its tokens without stopping, else "stop".
const char* finish_reason(const Answer& a, int max_tokens);

// GET /v1/models and /v1/models/{id}.
nlohmann::json model_object(const std::string& model, int64_t created);
nlohmann::json model_list(const std::string& model, int64_t created);

}  // namespace vidi::server
