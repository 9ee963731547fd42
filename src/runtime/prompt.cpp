#include "runtime/prompt.h"

#include "vidi/error.h"

namespace vidi::runtime {

std::string retrieval_question(const std::string& query) {
    std::string q = query;
    while (!q.empty() && (q.back() == ' ' || q.back() == '\n')) q.pop_back();
    if (!q.empty() && q.back() == '.') q.pop_back();
    VIDI_CHECK(!q.empty(), "the retrieval query is empty");
    return "During which time segments in the video can we see " + q + "?";
}

std::vector<int32_t> build_prompt(const io::Tokenizer& tok, const std::string& text, bool with_media, int bos_id) {
    VIDI_CHECK(!text.empty(), "the question is empty");
    const std::string head = "<start_of_turn>user\n";
    const std::string tail = text + "<end_of_turn>\n<start_of_turn>model\n";
    std::vector<int32_t> ids{bos_id};
    auto append = [&](const std::string& s) {
        auto part = tok.encode(s);
        ids.insert(ids.end(), part.begin(), part.end());
    };
    if (with_media) {
        // The official code splits at <image>, tokenises both sides, and drops the image token.
        append(head);
        append("\n" + tail);
    } else {
        append(head + tail);
    }
    return ids;
}

}  // namespace vidi::runtime
