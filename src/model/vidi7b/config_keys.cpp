// Vidi-7B's config.json keys: Mistral's (MistralConfig's defaults where a key is absent), then
// the shared mm_* and tower keys, with the checks the official constructor makes by failing.
#include <algorithm>

#include "io/json_file.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

using io::json_get;
using io::json_get_or;
using io::require_positive;

namespace {

bool has(const nlohmann::json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

// eos_token_id: one id or a list of them (generation stops at any).
std::vector<int> eos_ids(const nlohmann::json& j, const std::string& where) {
    if (!has(j, "eos_token_id")) return {2};  // MistralConfig's default
    const nlohmann::json& e = j["eos_token_id"];
    std::vector<int> ids;
    if (e.is_array()) {
        for (const nlohmann::json& id : e) {
            if (!id.is_number_integer()) fail(where, ": \"eos_token_id\" holds a non-integer ", id.dump());
            ids.push_back(id.get<int>());
        }
    } else {
        ids.push_back(json_get<int>(j, "eos_token_id", where));
    }
    if (ids.empty()) fail(where, ": \"eos_token_id\" is an empty list");
    return ids;
}

// The towers by name, as DattnMMModel picks their classes: "clip" before "siglip". Checked
// before the tower configs are read, so that a CLIP tower is named as such.
void check_towers(const nlohmann::json& j, const std::string& where) {
    MediaConfig m;
    m.vision_tower = json_get<std::string>(j, "mm_vision_tower", where);
    m.audio_tower = json_get<std::string>(j, "mm_audio_tower", where);
    auto lower = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
        return s;
    };
    const std::string vision = lower(m.vision_tower), audio = lower(m.audio_tower);
    if (vision.find("clip") != std::string::npos)
        fail(where, ": mm_vision_tower \"", m.vision_tower,
             "\" is a CLIP tower, which this engine does not run (only SigLIP; docs/vidi-7b.md)");
    if (vision.find("siglip") == std::string::npos)
        fail(where, ": mm_vision_tower \"", m.vision_tower,
             "\" names neither a CLIP nor a SigLIP tower (the official loader picks the class by that word)");
    if (audio.find("whisper") == std::string::npos)
        fail(where, ": mm_audio_tower \"", m.audio_tower, "\" is not a Whisper tower (the official loader wants the word)");
}

}  // namespace

void read_config(const nlohmann::json& j, const std::string& where, ModelConfig& c) {
    LlmConfig& l = c.llm;
    read_decoder_shape(j, where, l);
    l.query_pre_attn_scalar = l.head_dim;  // FlashAttention's default scale hd^-0.5
    l.rms_eps = json_get_or<double>(j, "rms_norm_eps", 1e-6, where);
    l.rope_theta = json_get_or<double>(j, "rope_theta", 10000.0, where);
    l.attn_softcap = l.final_softcap = 0;
    // MistralConfig: 4096 when the key is absent; null turns the window off.
    l.sliding_window = !j.contains("sliding_window") ? 4096 : json_get_or<int>(j, "sliding_window", 0, where);
    l.max_positions = json_get_or<int>(j, "max_position_embeddings", 4096 * 32, where);
    l.bos_id = json_get_or<int>(j, "bos_token_id", 1, where);
    l.eos_ids = eos_ids(j, where);
    l.eos_id = l.eos_ids.front();
    l.pad_id = json_get_or<int>(j, "pad_token_id", 0, where);
    l.tie_embeddings = json_get_or<bool>(j, "tie_word_embeddings", false, where);
    check_decoder_numbers(l, where);
    const std::string act = json_get_or<std::string>(j, "hidden_act", "silu", where);
    if (act != "silu") fail(where, ": unsupported hidden_act \"", act, "\" (Mistral's is silu)");
    check_rope_scaling(j, where, "Vidi-7B (Mistral-7B)");

    // DattnMistralConfig has no usable default for these (None, or "image" for the input type).
    for (const char* key : {"mm_image_pool_size", "mm_audio_pool_size", "mm_time_interval", "mm_input_type"})
        if (!has(j, key)) fail(where, ": missing key \"", key, "\" (Vidi-7B has no default for it)");
    check_towers(j, where);
    read_media_config(j, where, c);
    const int g = c.vision.grid(), s = c.mm.image_pool;
    if (s < 2 || s > g)
        fail(where, ": mm_image_pool_size ", s, " must be between 2 and the vision tower's ", g, " patches a side");
}

}  // namespace vidi::model::vidi7b
