// The Vidi-7B family: Vidi-7B (Mistral-7B with decomposed attention, SigLIP and Whisper
// towers, the first Vidi report's glue). docs/vidi-7b.md describes its computation.
#include "model/vidi7b/family.h"

#include "model/common/tower_layout.h"
#include "model/vidi7b/media.h"
#include "model/vidi7b/mistral.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

namespace {

// There is no visual-token budget: every frame gives s² tokens. The planner may still thin
// frames under a smaller budget (--visual-tokens, or when memory is short).
constexpr int64_t kNoBudget = int64_t(1) << 40;

class Vidi7B final : public Family {
public:
    std::string name() const override { return "vidi-7b"; }
    std::vector<std::string> model_types() const override { return {"dattn_mistral"}; }
    std::vector<std::string> architectures() const override { return {"DattnMistralForCausalLM"}; }

    void read_config(const nlohmann::json& j, const std::string& where, ModelConfig& c) const override {
        vidi7b::read_config(j, where, c);
    }
    io::ExpectedTensors expected_tensors(const ModelConfig& c, const io::TensorStore* store) const override {
        return vidi7b::expected_tensors(c, store ? detect_vision_prefix(*store) : kVisionPrefixOfficial);
    }
    io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c) const override {
        return vidi7b::random_checkpoint_tensors(c);
    }
    io::SentencePieceLayout tokenizer_layout() const override { return vidi7b::tokenizer_layout(); }
    std::set<std::string> markup_pieces() const override { return {}; }  // [INST] is plain text
    std::vector<Preset> presets() const override {
        return {{"vidi-7b",
                 "Vidi-7B with assumed shapes (the release's config.json is not public): Mistral-7B-v0.2, "
                 "SigLIP-so400m, Whisper-large-v3, 8x8 tokens a frame",
                 vidi7b_config()}};
    }
    Summary describe(const ModelConfig& c, const io::TensorStore& store) const override {
        return vidi7b::describe(c, store);
    }

    std::unique_ptr<Decoder> make_decoder(const ModelConfig& c, const WeightLoader& w) const override {
        return std::make_unique<Mistral>(c, w);
    }
    std::unique_ptr<MediaTokenizer> make_media(const ModelConfig& c, const WeightLoader& w) const override {
        return std::make_unique<Media>(c, w);
    }

    std::string retrieval_question(const std::string& query, double duration) const override {
        return vidi7b::retrieval_question(query, duration);
    }
    std::vector<int32_t> prompt(const io::Tokenizer& tok, const ModelConfig& /*c*/, const std::string& text,
                                bool with_media) const override {
        return build_prompt(tok, text, with_media);
    }
    // model/builder.py: generation_config.eos_token_id = config.eos_token_id.
    std::vector<int32_t> stop_ids(const io::Tokenizer& /*tok*/, const ModelConfig& c) const override {
        return {c.llm.eos_ids.begin(), c.llm.eos_ids.end()};
    }
    std::vector<std::string> chat_templates() const override { return vidi7b::chat_templates(); }
    std::vector<TimeRange> parse_ranges(const std::string& answer, double duration) const override {
        return vidi7b::parse_ranges(answer, duration);
    }
    std::string format_range(const TimeRange& r) const override { return vidi7b::format_range(r); }

    int64_t default_visual_budget() const override { return kNoBudget; }
    int token_grid_side(const ModelConfig& c, int64_t /*frames*/, int64_t /*budget*/) const override {
        return c.mm.image_pool;
    }
    int min_token_grid_side(const ModelConfig& c) const override { return c.mm.image_pool; }
    int64_t audio_tokens_per_second(const ModelConfig& c) const override {
        return 50 / std::max(1, c.mm.audio_pool);  // 50 Whisper states a second, pooled
    }
    VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                                   const QuantFormat& kv) const override {
        return vidi7b::video_footprint(c, v, frame_batch, act_dtype, kv);
    }
};

}  // namespace

const Family& family() {
    static const Vidi7B f;
    return f;
}

}  // namespace vidi::model::vidi7b
