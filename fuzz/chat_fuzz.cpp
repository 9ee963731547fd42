// libFuzzer: the OpenAI-compatible request of `vidi serve` (POST /v1/chat/completions) on
// arbitrary JSON text, through the same parser the server uses (parse_client_json, its depth
// bound) and parse_chat_request. Every refusal must be an HttpError (400, 413, 404 for another
// model); what is accepted must have text within its bound and a token limit within the server's.
#include <cstdlib>
#include <string>

#include "app/server/form.h"
#include "app/server/http_error.h"
#include "app/server/openai.h"

using namespace vidi::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    constexpr int kMaxTokens = 64;
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const nlohmann::json body = parse_client_json(text, 8);
        if (body.is_discarded() || !body.is_object()) return 0;
        const ChatRequest c = parse_chat_request(body, "tiny-a", kMaxTokens, 256);
        const int n = c.question.options.max_new_tokens;
        if (n < 1 || n > kMaxTokens) std::abort();
        if (c.question.text.find_first_not_of(" \t\r\n") == std::string::npos || c.question.text.size() > 256)
            std::abort();
        if (c.video_url && c.video_url->empty()) std::abort();
        (void)brief_json(body);
    } catch (const HttpError& e) {
        if (e.status() != 400 && e.status() != 404 && e.status() != 413) std::abort();
        (void)error_body(e.status(), e.what(), ErrorStyle::openai);
    }
    return 0;
}
