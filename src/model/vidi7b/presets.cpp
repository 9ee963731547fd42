// Vidi-7B's make-checkpoint preset and its random checkpoints' tokenizer layout.
//
// The released config.json is not public (docs/vidi-7b.md, "What is not known"): the preset
// takes the shapes of the model Vidi-7B builds on, Mistral-7B-Instruct-v0.2 (32 layers, D 4096,
// 32 heads / 8 K/V heads of 128, MLP 14336, vocabulary 32000, rope_theta 1e6, no sliding
// window), SigLIP-so400m-patch14-384 and Whisper-large-v3 by hub id (the built-in tower
// configs), and for the glue the values docs/vidi-7b.md takes as most likely (an 8×8 visual
// grid per frame, audio pool 5, time interval 10000 as Vidi1.5-9B). Assumed shapes for
// benchmarking and memory planning, not read from the release.
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

using nlohmann::json;

json vidi7b_config() {
    return {
        {"architectures", {"DattnMistralForCausalLM"}},
        {"model_type", "dattn_mistral"},
        {"torch_dtype", "bfloat16"},
        {"hidden_size", 4096},
        {"intermediate_size", 14336},
        {"num_hidden_layers", 32},
        {"num_attention_heads", 32},
        {"num_key_value_heads", 8},
        {"head_dim", 128},
        {"vocab_size", 32000},
        {"hidden_act", "silu"},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 1000000.0},
        {"sliding_window", nullptr},
        {"max_position_embeddings", 32768},
        {"tie_word_embeddings", false},
        {"bos_token_id", 1},
        {"eos_token_id", 2},
        {"mm_vision_tower", "google/siglip-so400m-patch14-384"},
        {"mm_audio_tower", "openai/whisper-large-v3"},
        {"mm_vision_select_layer", -2},
        {"mm_image_pool_size", 8},
        {"mm_audio_pool_size", 5},
        {"mm_time_interval", 10000},
        {"mm_std", 0.02},
        {"mm_projector_type", "mlp2x_gelu"},
        {"mm_input_type", "video"},
        {"mm_image_aspect_ratio", "resize"},
        {"mm_splits", 32},
    };
}

io::SentencePieceLayout tokenizer_layout() {
    using Kind = io::SentencePieceLayout::Kind;
    io::SentencePieceLayout l;
    l.specials = {{"<unk>", Kind::unknown}, {"<s>", Kind::control}, {"</s>", Kind::control}};
    l.unk_id = 0, l.bos_id = 1, l.eos_id = 2;  // no pad piece: pad = unk (build_text_tokenizer)
    l.add_dummy_prefix = true;
    return l;
}

}  // namespace vidi::model::vidi7b
