// Vidi-7B's prompt (docs/vidi-7b.md §5): the percentage question with the video length, the
// Mistral-Instruct turn, and the split tokenisation around <image> (media enter through
// cross-attention, not as tokens).
#include <cstdio>

#include "model/common/python_strip.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

std::string retrieval_question(const std::string& query, double duration) {
    const std::string q = query_without_dot(query);
    VIDI_CHECK(duration >= 0 && duration < 1e12, "the retrieval question needs the video's length, got ", duration);
    // Python's '{:.2f}' and C's "%.2f" both round the binary value correctly (24.625 -> 24.62).
    char length[64];
    std::snprintf(length, sizeof length, "%.2f", duration);
    return "Given the frames from a video, answer the time range in percentage that corresponds to query text "
           "split by comma. Video length is: " +
           std::string(length) + " and text query is: " + q + ".";
}

std::vector<int32_t> build_prompt(const io::Tokenizer& tok, const std::string& text, bool with_media) {
    VIDI_CHECK(!python_strip(text).empty(), "the question is empty");
    // The chat string is "[INST] <image>\n{text} [/INST]" (Mistral's template does not trim the
    // content), split at <image>: each side tokenised with its own <s>, of which only the
    // first is kept; the image token itself gives no id.
    const int bos = tok.bos_id();
    VIDI_CHECK(bos >= 0, tok.path(), ": the tokenizer has no <s> piece");
    std::vector<int32_t> ids{bos};
    auto append = [&](const std::string& s) {
        auto part = tok.encode(s);
        ids.insert(ids.end(), part.begin(), part.end());
    };
    if (with_media) {
        append("[INST] ");
        append("\n" + text + " [/INST]");
    } else {
        append("[INST] " + text + " [/INST]");
    }
    return ids;
}

std::vector<std::string> chat_templates() {
    // One user turn renders as "<s>[INST] {content} [/INST]" in both: the short form (the tiny
    // test checkpoint's) and Mistral-7B-Instruct's, which also checks the roles' order.
    const std::string turn =
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}";
    const std::string short_form = "{{ bos_token }}{% for message in messages %}" + turn +
                                   "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
    const std::string instruct =
        "{{ bos_token }}{% for message in messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
        turn +
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
    return {short_form, instruct};
}

}  // namespace vidi::model::vidi7b
