// A checkpoint's configuration: config.json read by its model family (model/family.h),
// with the tower configs (SigLIP, Whisper: from a tower directory or built in for the
// known hub ids; never fetched). Every family fills the same struct; a knob a family does
// not have keeps its neutral default (no soft-cap, no sliding window, ...).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace vidi::model {

class Family;

// The decoder's hyperparameters.
struct LlmConfig {
    int hidden = 0;        // D
    int intermediate = 0;  // MLP width
    int layers = 0;
    int heads = 0;
    int kv_heads = 0;
    int head_dim = 0;
    double query_pre_attn_scalar = 0;  // attention scale 1/sqrt(this) (the head dim unless a family says)
    int vocab = 0;
    double rms_eps = 1e-6;
    double rope_theta = 10000;
    double attn_softcap = 0;   // 0: none
    double final_softcap = 0;  // 0: none
    int sliding_window = 0;    // 0: none
    int max_positions = 8192;
    int bos_id = 2, eos_id = 1, pad_id = 0;
    std::vector<int> eos_ids;  // every id config.json's eos_token_id names (a family may stop at them)
    bool tie_embeddings = true;
};

struct VisionConfig {
    std::string source;  // directory it came from, or "built-in <hub id>"
    int hidden = 0, layers = 0, heads = 0, intermediate = 0;
    int image_size = 0, patch_size = 0, channels = 3;
    double eps = 1e-6;
    int grid() const { return patch_size ? image_size / patch_size : 0; }  // 27 for so400m
};

struct AudioConfig {
    std::string source;
    int d_model = 0, layers = 0, heads = 0, ffn = 0;
    int mel_bins = 128, max_positions = 1500;
    double eps = 1e-5;  // nn.LayerNorm default, as in Hugging Face's WhisperEncoder
};

struct MediaConfig {
    std::string vision_tower, audio_tower;  // as written in config.json
    int select_layer = -2;
    int image_pool = 2;
    int audio_pool = 5;
    int time_interval = 10000;
    double mm_std = 0;
    std::string projector_type = "mlp2x_gelu";
    std::string input_type = "video";
};

struct ModelConfig {
    std::string dir;
    std::string model_type;
    const Family* family = nullptr;  // the family that read it (never null once loaded)
    std::string family_warning;      // architectures that name another family (family_disagreement)
    LlmConfig llm;
    VisionConfig vision;
    AudioConfig audio;
    MediaConfig mm;

    // Number of vision layers actually run (select_layer -2 of L layers runs L-1).
    int vision_layers_used() const;
};

// Reads DIR/config.json: the registry picks the family by model_type / architectures, which
// reads its keys. Throws vidi::Error naming the file and key (or the known model types).
ModelConfig load_config(const std::string& dir);
// The same from JSON (tower directories resolved against `dir`).
ModelConfig config_from_json(const nlohmann::json& j, const std::string& dir);

// The decoder's shape keys both families read alike (hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads, num_key_value_heads (default: the heads), head_dim
// (default: D/H), vocab_size), checked: positive, whole K/V groups, an even hidden_size (the
// sinusoidal positions). Families call it from Family::read_config.
void read_decoder_shape(const nlohmann::json& j, const std::string& where, LlmConfig& l);
// The numbers a family reads beside the shape, checked alike for every family: positive
// epsilon, RoPE base and attention scale; soft caps and window not negative; the bos and eos
// ids inside the vocabulary. (A negative rms_norm_eps gave NaN logits and an empty answer.)
void check_decoder_numbers(const LlmConfig& l, const std::string& where);
// config.json's "rope_scaling": transformers (4.50, the official pin) honours it, so only what
// computes plain RoPE is taken (absent, null, or rope_type/type "default"); any other scaling
// is refused by name rather than ignored. (`family`: named in the error.)
void check_rope_scaling(const nlohmann::json& j, const std::string& where, const char* family);

// The shared keys of a Vidi config.json: mm_* and the two towers (their config.json or the
// built-in one), checked. Families call it from Family::read_config.
void read_media_config(const nlohmann::json& j, const std::string& where, ModelConfig& c);

VisionConfig builtin_vision_config(const std::string& hub_id);  // throws on unknown id
AudioConfig builtin_audio_config(const std::string& hub_id);

nlohmann::json config_to_json(const ModelConfig& c);  // the summary `vidi inspect --json` shows

}  // namespace vidi::model
