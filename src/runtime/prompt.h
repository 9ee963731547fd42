// Prompt construction (SPEC.md §5): the chat template, the retrieval question, and the
// split tokenisation around <image> (media enter through cross-attention, not as tokens).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace vidi::runtime {

// "During which time segments in the video can we see {query}?" with one trailing '.' of
// the query dropped and nothing else changed, as the official script does. A blank query is
// an error.
std::string retrieval_question(const std::string& query);

// Python's str.strip() (what the chat template's `trim` does): Unicode whitespace at both
// ends of UTF-8 text.
std::string python_strip(const std::string& s);

// Token ids of one user turn, its content trimmed as the chat template does: with media,
// [bos] + enc("<start_of_turn>user\n") + enc("\n{text}<end_of_turn>\n<start_of_turn>model\n")
// (the content "<image>\n{text}" trimmed: only the text's end); text-only, the turn without
// the media line (the text trimmed at both ends).
std::vector<int32_t> build_prompt(const io::Tokenizer& tok, const std::string& text, bool with_media, int bos_id);

}  // namespace vidi::runtime
