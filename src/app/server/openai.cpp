#include "app/server/openai.h"

#include <cstdio>
#include <mutex>
#include <random>
#include <vector>

#include "app/server/http_error.h"

using nlohmann::json;

namespace vidi::server {
namespace {

HttpError bad(const std::string& message) { return HttpError(400, message); }

// The user's text and video from one message's content (a string, or an array of parts).
void read_content(const json& content, size_t index, std::string& text, std::optional<std::string>& video_url) {
    const std::string where = "messages[" + std::to_string(index) + "].content";
    if (content.is_string()) {
        text = content.get<std::string>();
        return;
    }
    if (!content.is_array()) throw bad(where + " must be a string or an array of content parts");
    for (size_t i = 0; i < content.size(); ++i) {
        const json& part = content[i];
        const std::string at = where + "[" + std::to_string(i) + "]";
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
            throw bad(at + " must be an object with a \"type\"");
        const std::string type = part["type"];
        if (type == "text") {
            if (!part.contains("text") || !part["text"].is_string()) throw bad(at + ".text must be a string");
            if (!text.empty()) text += '\n';
            text += part["text"].get<std::string>();
        } else if (type == "video_url") {
            const json* v = part.contains("video_url") ? &part["video_url"] : nullptr;
            // {"url": …} as OpenAI's image_url; a bare string is accepted too.
            if (v && v->is_object() && v->contains("url")) v = &(*v)["url"];
            if (!v || !v->is_string() || v->get<std::string>().empty())
                throw bad(at + ".video_url must be {\"url\": \"…\"} with a video id, a data: URL or a path");
            if (video_url) throw bad("more than one video_url part: ask about one video at a time");
            video_url = v->get<std::string>();
        } else if (type == "image_url" || type == "input_image") {
            throw bad(at + ": images are not supported; send the video as a \"video_url\" part");
        } else {
            throw bad(at + ": content parts of type '" + brief_text(type) + "' are not supported (use \"text\" and \"video_url\")");
        }
    }
}

int read_max_tokens(const json& body, int max_new_tokens) {
    for (const char* name : {"max_completion_tokens", "max_tokens"}) {
        if (!body.contains(name) || body[name].is_null()) continue;
        const json& v = body[name];
        if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > max_new_tokens)
            throw bad(std::string(name) + " must be an integer from 1 to " + std::to_string(max_new_tokens) +
                      " (the server's --max-new-tokens), not " + brief_json(v));
        return v.get<int>();
    }
    return max_new_tokens;
}

Task read_task(const json& body) {
    if (!body.contains("vidi") || body["vidi"].is_null()) return Task::question;
    const json& v = body["vidi"];
    if (!v.is_object()) throw bad("\"vidi\" must be an object such as {\"task\": \"retrieval\"}");
    if (!v.contains("task")) return Task::question;
    const std::string t = v["task"].is_string() ? v["task"].get<std::string>() : brief_json(v["task"]);
    if (t == "retrieval") return Task::retrieval;
    if (t == "vqa" || t == "question") return Task::question;
    throw bad("vidi.task must be \"retrieval\" or \"vqa\", not " + brief_json(v["task"]));
}

}  // namespace

std::string ranges_text(const std::vector<TimeRange>& ranges) {
    std::string s;
    for (const auto& r : ranges) s += (s.empty() ? "" : ", ") + format_range(r);
    return s;
}

ChatRequest parse_chat_request(const json& body, const std::string& model, int max_new_tokens,
                               size_t max_text_bytes) {
    ChatRequest c;
    if (body.contains("model") && !body["model"].is_null()) {
        if (!body["model"].is_string()) throw bad("\"model\" must be a string");
        const std::string m = body["model"];
        if (m != model) throw HttpError(404, "the model '" + brief_text(m) + "' does not exist; this server serves '" + model + "'");
    }
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
        throw bad("\"messages\" must be a non-empty array");
    const json& messages = body["messages"];
    bool seen_user = false;
    std::string text;
    for (size_t i = 0; i < messages.size(); ++i) {
        const json& m = messages[i];
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content"))
            throw bad("messages[" + std::to_string(i) + "] must be an object with \"role\" and \"content\"");
        const std::string role = m["role"];
        if (role != "user")
            throw bad("messages[" + std::to_string(i) + "]: role '" + brief_text(role) +
                      "' is not supported; vidi answers a single user turn about a video");
        if (seen_user) throw bad("only one user message is supported: vidi answers a single turn about a video");
        seen_user = true;
        read_content(m["content"], i, text, c.video_url);
    }
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw bad("the user message has no text");
    if (text.size() > max_text_bytes)
        throw HttpError(413, "the user message's text is longer than " + std::to_string(max_text_bytes) + " bytes");
    c.question.text = text;
    c.question.task = read_task(body);
    c.question.options.max_new_tokens = read_max_tokens(body, max_new_tokens);
    if (body.contains("n") && !body["n"].is_null() && body["n"] != 1) throw bad("n must be 1 (one answer a request)");
    if (body.contains("stream") && !body["stream"].is_null()) {
        if (!body["stream"].is_boolean()) throw bad("\"stream\" must be true or false");
        c.stream = body["stream"];
    }
    if (body.contains("stream_options") && body["stream_options"].is_object()) {
        const json& o = body["stream_options"];
        c.include_usage = o.contains("include_usage") && o["include_usage"].is_boolean() && o["include_usage"];
    }
    return c;
}

std::string completion_id() {
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard lock(mu);
    char buf[40];
    std::snprintf(buf, sizeof buf, "chatcmpl-%016llx%08llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng() & 0xffffffffULL));
    return buf;
}

json vidi_field(Task task, const Answer& a, const std::string& video_id, const json& timings) {
    json v = {{"task", task == Task::retrieval ? "retrieval" : "vqa"}, {"duration", a.duration}};
    if (task == Task::retrieval) {
        json ranges = json::array();
        for (const auto& r : a.ranges) ranges.push_back({{"start", r.start}, {"end", r.end}});
        v["ranges"] = ranges;
        v["answer"] = ranges_text(a.ranges);
    }
    if (!video_id.empty()) v["video_id"] = video_id;
    v["timings"] = timings;
    return v;
}

const char* finish_reason(const Answer& a, int max_tokens) {
    return a.timings.generated_tokens >= max_tokens ? "length" : "stop";
}

json chat_completion(const std::string& id, int64_t created, const std::string& model, const Answer& a,
                     const char* finish_reason, json vidi) {
    const int prompt = a.timings.prompt_tokens, completion = a.timings.generated_tokens;
    return {{"id", id},
            {"object", "chat.completion"},
            {"created", created},
            {"model", model},
            {"choices",
             json::array({{{"index", 0},
                           {"message", {{"role", "assistant"}, {"content", a.text}}},
                           {"logprobs", nullptr},
                           {"finish_reason", finish_reason}}})},
            {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}}},
            {"vidi", std::move(vidi)}};
}

json chat_chunk(const std::string& id, int64_t created, const std::string& model, const json& delta,
                const char* finish_reason, json vidi) {
    json chunk = {{"id", id},
                  {"object", "chat.completion.chunk"},
                  {"created", created},
                  {"model", model},
                  {"choices", json::array({{{"index", 0},
                                            {"delta", delta},
                                            {"logprobs", nullptr},
                                            {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}}})}};
    if (!vidi.is_null()) chunk["vidi"] = std::move(vidi);
    return chunk;
}

json usage_chunk(const std::string& id, int64_t created, const std::string& model, const Answer& a) {
    const int prompt = a.timings.prompt_tokens, completion = a.timings.generated_tokens;
    return {{"id", id},
            {"object", "chat.completion.chunk"},
            {"created", created},
            {"model", model},
            {"choices", json::array()},
            {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}}}};
}

json model_object(const std::string& model, int64_t created) {
    return {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "vidi"}};
}

json model_list(const std::string& model, int64_t created) {
    return {{"object", "list"}, {"data", json::array({model_object(model, created)})}};
}

}  // namespace vidi::server
