// The Vidi1.5 family: Vidi1.5-9B (Gemma2-9B with decomposed attention, SigLIP2 and
// Whisper-large-v3 towers, Vidi1.5's glue). SPEC.md describes its computation.
#include "model/vidi15/family.h"

#include "model/common/tower_layout.h"
#include "model/vidi15/gemma2.h"
#include "model/vidi15/media_encoder.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

namespace {

class Vidi15 final : public Family {
public:
    std::string name() const override { return "vidi1.5"; }
    std::vector<std::string> model_types() const override { return {"dattn_gemma2", "gemma2"}; }
    std::vector<std::string> architectures() const override { return {"DattnGemma2ForCausalLM"}; }

    void read_config(const nlohmann::json& j, const std::string& where, ModelConfig& c) const override {
        vidi15::read_config(j, where, c);
    }
    io::ExpectedTensors expected_tensors(const ModelConfig& c, const io::TensorStore* store) const override {
        return vidi15::expected_tensors(c, store ? detect_vision_prefix(*store) : kVisionPrefixOfficial);
    }
    io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c) const override {
        return vidi15::random_checkpoint_tensors(c);
    }
    io::SentencePieceLayout tokenizer_layout() const override { return vidi15::tokenizer_layout(); }
    std::set<std::string> markup_pieces() const override { return vidi15::markup_pieces(); }
    std::set<std::string> prompt_pieces() const override { return {"<start_of_turn>", "<end_of_turn>"}; }
    std::vector<Preset> presets() const override {
        return {{"vidi1.5-9b", "Vidi1.5-9B (Gemma2-9B, SigLIP2-so400m, Whisper-large-v3)", vidi15_9b_config()}};
    }
    Summary describe(const ModelConfig& c, const io::TensorStore& store) const override {
        return vidi15::describe(c, store);
    }

    std::unique_ptr<Decoder> make_decoder(const ModelConfig& c, const WeightLoader& w) const override {
        return std::make_unique<Gemma2>(c, w);
    }
    std::unique_ptr<MediaTokenizer> make_media(const ModelConfig& c, const WeightLoader& w) const override {
        return std::make_unique<MediaEncoder>(c, w);
    }

    std::string retrieval_question(const std::string& query, double /*duration*/) const override {
        return vidi15::retrieval_question(query);
    }
    std::vector<int32_t> prompt(const io::Tokenizer& tok, const ModelConfig& c, const std::string& text,
                                bool with_media) const override {
        return build_prompt(tok, text, with_media, c.llm.bos_id);
    }
    std::vector<int32_t> stop_ids(const io::Tokenizer& tok, const ModelConfig& /*c*/) const override {
        return {tok.piece_to_id("<end_of_turn>")};  // one of prompt_pieces(): load_tokenizer checks it
    }
    std::vector<std::string> chat_templates() const override { return vidi15::chat_templates(); }
    std::vector<TimeRange> parse_ranges(const std::string& answer, double duration) const override {
        return vidi15::parse_ranges(answer, duration);
    }
    std::string format_range(const TimeRange& r) const override { return vidi::format_range(r); }

    int64_t default_visual_budget() const override { return kVisualTokenBudget; }
    int token_grid_side(const ModelConfig& c, int64_t frames, int64_t budget) const override {
        return vidi15::token_grid_side(c, frames, budget);
    }
    int min_token_grid_side(const ModelConfig& c) const override {
        return kMinPatchGridSide / std::max(1, c.mm.image_pool);
    }
    int64_t audio_tokens_per_second(const ModelConfig& c) const override {
        return 50 / std::max(1, c.mm.audio_pool);  // SPEC §8: 50 Whisper states a second, pooled
    }
    VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                                   const QuantFormat& kv) const override {
        return vidi15::video_footprint(c, v, frame_batch, act_dtype, kv);
    }
};

}  // namespace

const Family& family() {
    static const Vidi15 f;
    return f;
}

}  // namespace vidi::model::vidi15
