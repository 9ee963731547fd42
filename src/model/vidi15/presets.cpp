// Vidi1.5's make-checkpoint preset and its random checkpoints' tokenizer layout.
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

using nlohmann::json;

json vidi15_9b_config() {
    return {
        {"architectures", {"DattnGemma2ForCausalLM"}},
        {"model_type", "dattn_gemma2"},
        {"torch_dtype", "bfloat16"},
        {"hidden_size", 3584},
        {"intermediate_size", 14336},
        {"num_hidden_layers", 42},
        {"num_attention_heads", 16},
        {"num_key_value_heads", 8},
        {"head_dim", 256},
        {"query_pre_attn_scalar", 256},
        {"vocab_size", 256000},
        {"rms_norm_eps", 1e-6},
        {"rope_theta", 10000.0},
        {"attn_logit_softcapping", 50.0},
        {"final_logit_softcapping", 30.0},
        {"sliding_window", 4096},
        {"max_position_embeddings", 8192},
        {"hidden_activation", "gelu_pytorch_tanh"},
        {"tie_word_embeddings", true},
        {"bos_token_id", 2},
        {"eos_token_id", 1},
        {"pad_token_id", 0},
        {"mm_vision_tower", "google/siglip2-so400m-patch14-384"},
        {"mm_audio_tower", "openai/whisper-large-v3"},
        {"mm_vision_select_layer", -2},
        {"mm_image_pool_size", 2},
        {"mm_audio_pool_size", 5},
        {"mm_time_interval", 10000},
        {"mm_std", 0.028976401314139366},
        {"mm_projector_type", "mlp2x_gelu"},
        {"mm_input_type", "video"},
        {"mm_splits", 4},
        {"mm_image_aspect_ratio", "resize"},
    };
}

io::SentencePieceLayout tokenizer_layout() {
    using Kind = io::SentencePieceLayout::Kind;
    io::SentencePieceLayout l;
    l.specials = {{"<pad>", Kind::control},        {"<eos>", Kind::control},
                  {"<bos>", Kind::control},        {"<unk>", Kind::unknown},
                  {"<mask>", Kind::user_defined}, {"[multimodal]", Kind::user_defined}};
    for (int i = 0; i <= 98; ++i) l.specials.push_back({"<unused" + std::to_string(i) + ">", Kind::user_defined});
    for (const char* s : {"[@BOS@]", "<start_of_turn>", "<end_of_turn>", "\n"})
        l.specials.push_back({s, Kind::user_defined});
    l.pad_id = 0, l.eos_id = 1, l.bos_id = 2, l.unk_id = 3;
    return l;  // Gemma: no dummy prefix, spaces kept
}

}  // namespace vidi::model::vidi15
