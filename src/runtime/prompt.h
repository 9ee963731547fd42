// Prompt construction (SPEC.md §5): the chat template, the retrieval question, and the
// split tokenisation around <image> (media enter through cross-attention, not as tokens).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/tokenizer.h"

namespace vidi::runtime {

// "During which time segments in the video can we see {query}?" (a trailing '.' dropped).
std::string retrieval_question(const std::string& query);

// Token ids of one user turn: with media, [bos] + enc("<start_of_turn>user\n") +
// enc("\n{text}<end_of_turn>\n<start_of_turn>model\n"); text-only, the turn without the
// media line.
std::vector<int32_t> build_prompt(const io::Tokenizer& tok, const std::string& text, bool with_media, int bos_id);

}  // namespace vidi::runtime
