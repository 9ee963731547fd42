// Vidi1.5-9B (Gemma2 decoder with decomposed attention, SigLIP + Whisper towers, Vidi1.5's
// glue): the parts of its family (family.cpp puts them together).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "model/config.h"
#include "model/family.h"

namespace vidi::model::vidi15 {

// config.json: the Gemma2 keys (then the shared mm_* and tower keys).
void read_config(const nlohmann::json& j, const std::string& where, ModelConfig& c);

// Every tensor the config implies (SPEC.md §1): LLM, vision (under vision_prefix), audio, glue.
io::ExpectedTensors expected_tensors(const ModelConfig& c, const std::string& vision_prefix);
// make-checkpoint's tensors: the official layout (lm_head only when untied).
io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c);
// Gemma's tokenizer layout: <pad> 0, <eos> 1, <bos> 2, <unk> 3, <mask> 4, [multimodal] 5,
// <unused0..98>, [@BOS@] 105, <start_of_turn> 106, <end_of_turn> 107, "\n" 108.
io::SentencePieceLayout tokenizer_layout();
// config.json of the released Vidi1.5-9B (Gemma2-9B; towers by hub id, so the built-in
// SigLIP2-so400m and Whisper-large-v3 configs apply).
nlohmann::json vidi15_9b_config();
Summary describe(const ModelConfig& c, const io::TensorStore& store);

// Prompt (SPEC.md §5).
// "During which time segments in the video can we see {query}?" with one trailing '.' of
// the query dropped and nothing else changed, as the official script does. A blank query is
// an error.
std::string retrieval_question(const std::string& query);
// Token ids of one user turn, its content trimmed as the chat template does: with media,
// [bos] + enc("<start_of_turn>user\n") + enc("\n{text}<end_of_turn>\n<start_of_turn>model\n")
// (the content "<image>\n{text}" trimmed: only the text's end); text-only, the turn without
// the media line (the text trimmed at both ends).
std::vector<int32_t> build_prompt(const io::Tokenizer& tok, const std::string& text, bool with_media, int bos_id);
// Gemma's chat markers, which decoding drops, and the chat_template strings the prompt follows.
std::set<std::string> markup_pieces();
std::vector<std::string> chat_templates();

// Answers (SPEC.md §7): every "d.ddd-d.ddd" fraction pair, scaled by the duration, clamped to
// [0, duration], put in order (start <= end).
std::vector<TimeRange> parse_ranges(const std::string& text, double duration);

// Memory per video (the working sets of a 4096-row media chunk and of the towers).
VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                               const QuantFormat& kv);

}  // namespace vidi::model::vidi15
