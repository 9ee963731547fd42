// Vidi-7B (docs/vidi-7b.md): the parts of its family (family.cpp puts them together).
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

namespace vidi::model::vidi7b {

// config.json (docs/vidi-7b.md §1): the Mistral keys with MistralConfig's defaults (a missing
// sliding_window is 4096, a null one none), then the shared mm_* and tower keys, of which
// mm_image_pool_size, mm_audio_pool_size and mm_time_interval have no default here.
void read_config(const nlohmann::json& j, const std::string& where, ModelConfig& c);

// Every tensor the config implies (§1): Mistral, SigLIP (under vision_prefix), Whisper, glue.
io::ExpectedTensors expected_tensors(const ModelConfig& c, const std::string& vision_prefix);
// make-checkpoint's tensors: the official layout (lm_head only when untied).
io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c);
// Side of the patch grid the pool's convolution leaves: g − ⌈g/s⌉ + 1 (22 for g 27, s 5).
int conv_grid_side(const ModelConfig& c);
int conv_kernel(const ModelConfig& c);  // ⌈g/s⌉

// Llama/Mistral v0.1's tokenizer layout: <unk> 0, <s> 1, </s> 2, bytes, a dummy prefix.
io::SentencePieceLayout tokenizer_layout();
// make-checkpoint's preset: assumed shapes (see presets.cpp), not the release's config.json.
nlohmann::json vidi7b_config();
Summary describe(const ModelConfig& c, const io::TensorStore& store);

// Prompt (§5).
// "Given the frames from a video, answer the time range in percentage that corresponds to
// query text split by comma. Video length is: {duration:.2f} and text query is: {query}."
// with one trailing '.' of the query dropped. A blank query is an error.
std::string retrieval_question(const std::string& query, double duration);
// [bos] + enc("[INST] ") + enc("\n{text} [/INST]") with media (the chat string split at
// <image>); [bos] + enc("[INST] {text} [/INST]") for a text-only turn.
std::vector<int32_t> build_prompt(const io::Tokenizer& tok, const std::string& text, bool with_media);
// The chat_template strings build_prompt() agrees with (Mistral-Instruct's [INST] form).
std::vector<std::string> chat_templates();

// Answers (§7): every match of ([\d|\.]+)-([\d|\.]+) whose sides Python's float() reads,
// times the duration, clamped to [0, duration] and put in order; other matches are skipped
// (the official script ends with ValueError there).
std::vector<TimeRange> parse_ranges(const std::string& text, double duration);
// The official print: "{:02d}:{:02d}:{:.2f}" of int(t/3600), int(t)%3600//60, int(t)%60 for
// each end, so the seconds have no leading zero and end in ".00" (65.7 s: "00:01:5.00").
std::string format_range(const TimeRange& r);

// Memory per video: the media chunks' working set, the towers' and the image pool's.
VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                               const QuantFormat& kv);

}  // namespace vidi::model::vidi7b
