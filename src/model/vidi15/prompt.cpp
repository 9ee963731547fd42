// Vidi1.5's prompt (SPEC.md §5): the Gemma chat turn, the retrieval question, and the split
// tokenisation around <image> (media enter through cross-attention, not as tokens).
#include "model/common/python_strip.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

std::string retrieval_question(const std::string& query) {
    return "During which time segments in the video can we see " + query_without_dot(query) + "?";
}

std::vector<int32_t> build_prompt(const io::Tokenizer& tok, const std::string& text, bool with_media, int bos_id) {
    VIDI_CHECK(!python_strip(text).empty(), "the question is empty");
    // The chat template trims the message's content, which with media is "<image>\n{text}"
    // (so only the text's end is trimmed there); the image token itself is dropped below.
    const std::string image = "<image>";
    const std::string body = with_media ? python_strip(image + "\n" + text).substr(image.size()) : python_strip(text);
    const std::string head = "<start_of_turn>user\n";
    const std::string tail = "<end_of_turn>\n<start_of_turn>model\n";
    std::vector<int32_t> ids{bos_id};
    auto append = [&](const std::string& s) {
        auto part = tok.encode(s);
        ids.insert(ids.end(), part.begin(), part.end());
    };
    if (with_media) {
        // The official code splits at <image>, tokenises both sides, and drops the image token.
        append(head);
        append(body + tail);
    } else {
        append(head + body + tail);
    }
    return ids;
}

std::set<std::string> markup_pieces() { return {"<start_of_turn>", "<end_of_turn>", "<mask>", "[multimodal]"}; }

std::vector<std::string> chat_templates() {
    // What build_prompt() writes for one user turn, as Gemma's templates say it: the short
    // form (the golden tiny-a checkpoint's) and Gemma-2-it's, which also refuses a system
    // turn and turns out of order (neither happens here).
    const std::string turns =
        "{% for message in messages %}"
        "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
        "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";
    const std::string checks =
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}";
    std::string gemma2_it = "{{ bos_token }}" + checks + turns.substr(turns.find("{% if (message['role'] =="));
    return {"{{ bos_token }}" + turns, gemma2_it};
}

}  // namespace vidi::model::vidi15
