// A model family: everything the engine knows about one kind of Vidi checkpoint, in one
// folder (model/vidi15/ for Vidi1.5-9B). The runtime, the app and io speak to this
// interface only; a new family implements it in its own folder (sharing the towers and
// glue of model/common/) and adds one line to the registry (model/registry.cpp).
//
// The registry picks the family of a checkpoint by config.json's model_type, else by its
// architectures; an unknown one is an error that lists the known model types.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "model/common/weights.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/media_tokenizer.h"
#include "vidi/vidi.h"

namespace vidi::model {

// A video's shape as the memory planner sees it: F frames of side×side visual tokens and
// `audio_tokens` audio tokens.
struct VideoShape {
    int64_t frames = 0;
    int64_t side = 0;
    int64_t audio_tokens = 0;
};

// What one video holds on the device while it lives, in bytes.
struct VideoFootprint {
    size_t media_tokens = 0;  // visual + audio tokens, [n, D]
    size_t media_kv = 0;      // per-layer K and V of both streams
    size_t activations = 0;   // the largest transient working set (a K/V chunk, a tower batch) + a margin
    size_t total() const { return media_tokens + media_kv + activations; }
};

// Room for what the working sets do not itemise: library workspaces, logits, the text cache.
constexpr size_t kWorkspaceMargin = size_t(256) << 20;

// `vidi inspect`'s view of a checkpoint's architecture: labelled lines ("LLM", "vision",
// "audio", "media") and the same as JSON (merged into the report).
struct Summary {
    std::vector<std::pair<std::string, std::string>> lines;
    nlohmann::json json = nlohmann::json::object();
};

// `vidi make-checkpoint --preset NAME`: a released model's config.json.
struct Preset {
    std::string name;         // "vidi1.5-9b"
    std::string description;  // one line for --help and errors
    nlohmann::json config;
};

class Family {
public:
    virtual ~Family() = default;

    // --- identity ----------------------------------------------------------------------
    virtual std::string name() const = 0;                        // "vidi1.5": inspect, /health, errors
    virtual std::vector<std::string> model_types() const = 0;    // config.json model_type values
    virtual std::vector<std::string> architectures() const = 0;  // config.json architectures[] entries

    // --- checkpoint ------------------------------------------------------------------------
    // Reads the family's keys of config.json into c (c.dir, c.model_type and c.family are set);
    // shared keys through read_media_config. Errors name `where` and the key.
    virtual void read_config(const nlohmann::json& j, const std::string& where, ModelConfig& c) const = 0;
    // Every tensor the config implies, for the validator (io::Checkpoint). `store`: the
    // checkpoint's tensors (a family may look at their names, e.g. for a prefix); null: the
    // official layout.
    virtual io::ExpectedTensors expected_tensors(const ModelConfig& c, const io::TensorStore* store) const = 0;
    // The tensors of a random-weight checkpoint in the official layout (make-checkpoint).
    virtual io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c) const = 0;
    // The tokenizer.model of a random-weight checkpoint, and the user-defined pieces that
    // decoding drops (skip_special_tokens).
    virtual io::SentencePieceLayout tokenizer_layout() const = 0;
    virtual std::set<std::string> markup_pieces() const = 0;
    // The pieces its prompts and stop ids are made of (chat markers): a tokenizer without any
    // of them as a single piece is another model's (load_tokenizer refuses it).
    virtual std::set<std::string> prompt_pieces() const { return {}; }
    virtual std::vector<Preset> presets() const = 0;
    virtual Summary describe(const ModelConfig& c, const io::TensorStore& store) const = 0;

    // --- modules ---------------------------------------------------------------------------
    // Built from the checkpoint's tensors through `w` (checked shapes; linear weights as
    // LoadOptions says), on w.backend().
    virtual std::unique_ptr<Decoder> make_decoder(const ModelConfig& c, const WeightLoader& w) const = 0;
    virtual std::unique_ptr<MediaTokenizer> make_media(const ModelConfig& c, const WeightLoader& w) const = 0;

    // --- text --------------------------------------------------------------------------------
    // The question a retrieval query becomes (duration: the video's, in seconds).
    virtual std::string retrieval_question(const std::string& query, double duration) const = 0;
    // Token ids of one user turn, with the media's place or text only (the family's chat
    // template, as the official code tokenises it).
    virtual std::vector<int32_t> prompt(const io::Tokenizer& tok, const ModelConfig& c, const std::string& text,
                                        bool with_media) const = 0;
    // Generation stops at any of these (not part of the answer).
    virtual std::vector<int32_t> stop_ids(const io::Tokenizer& tok, const ModelConfig& c) const = 0;
    // The chat_template strings of tokenizer_config.json that prompt() agrees with; another one
    // is warned about at load (model/common/chat_template.h).
    virtual std::vector<std::string> chat_templates() const = 0;
    // Retrieval answers: the time ranges in the text (seconds) and how one is printed.
    virtual std::vector<TimeRange> parse_ranges(const std::string& answer, double duration) const = 0;
    virtual std::string format_range(const TimeRange& r) const = 0;

    // --- memory ------------------------------------------------------------------------------
    // Visual tokens per video unless memory is short (the planner may lower it).
    virtual int64_t default_visual_budget() const = 0;
    // Token grid side per frame for F frames under `budget`, from the config alone (before any
    // weight is loaded), and the smallest side any budget gives.
    virtual int token_grid_side(const ModelConfig& c, int64_t frames, int64_t budget) const = 0;
    virtual int min_token_grid_side(const ModelConfig& c) const = 0;
    // Audio tokens per second of sound (the planner's estimate before decoding).
    virtual int64_t audio_tokens_per_second(const ModelConfig& c) const = 0;
    // What a video of this shape holds on the device: tokens in act_dtype, media K/V in
    // act_dtype or (kv bits 8 or 4) as media_kv_format() holds them, the working sets of the
    // towers (frame_batch frames at a time) and of the decoder's media chunks.
    virtual VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                                           const QuantFormat& kv) const = 0;
    // Bytes of the media K/V of one stream of `tokens` media tokens over all layers (4-bit keys
    // keep their scales per block of tokens: not a per-token multiple).
    virtual size_t media_kv_bytes(const ModelConfig& c, int64_t tokens, DType act_dtype, const QuantFormat& kv) const;
};

// What a video of this shape holds with a decomposed-attention decoder and the shared towers:
// its tokens and media K/V (c.family->media_kv_bytes of each stream), and the largest working
// set of a media chunk through a layer (its f32 residual, then in act_dtype the norm, K, V,
// repeated V, o_proj, gate, up, their product and down), a SigLIP batch, a Whisper batch with
// its audio glue and the whole log-mel, and `glue` (a family's own media working set), plus
// kWorkspaceMargin.
VideoFootprint decomposed_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                                    const QuantFormat& kv, size_t glue = 0);

// --- the registry (model/registry.cpp) ------------------------------------------------------
const std::vector<const Family*>& families();
// The family of a config.json: by model_type, else by an architectures entry.
const Family& family_for(const nlohmann::json& config, const std::string& where);
// Where config.json's architectures name only another family than the one its model_type
// picked (a hand-edited or mixed-up config), a warning that says which was taken; else empty.
std::string family_disagreement(const nlohmann::json& config, const Family& chosen, const std::string& where);
// `--preset NAME` over every family; an unknown name is an error listing the known ones.
Preset find_preset(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace vidi::model
