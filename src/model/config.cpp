#include "model/config.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "io/json_file.h"
#include "model/family.h"
#include "vidi/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::model {

namespace {

using io::json_get;
using io::json_get_or;
using io::require_positive;

// A tower directory named in config.json: relative to the checkpoint or absolute.
std::string tower_dir(const std::string& name, const std::string& dir) {
    if (name.empty()) return {};
    fs::path p(name);
    if (p.is_relative()) p = fs::path(dir) / p;
    if (fs::is_directory(p) && fs::exists(p / "config.json")) return p.string();
    return {};
}

// More layers than any released model by far: a typo (1000000) would otherwise build the
// expected tensors of each layer, gigabytes of names, before one is compared with the files.
// (Callers check that the count is positive with the rest of the shape.)
constexpr int kMostLayers = 1024;
void require_layer_count(int layers, const char* key, const std::string& where) {
    if (layers > kMostLayers)
        fail(where, ": \"", key, "\" is ", layers, ", more than the ", kMostLayers, " this engine takes");
}

VisionConfig vision_from_json(const json& j, const std::string& where) {
    const json& v = j.contains("vision_config") ? j["vision_config"] : j;  // full SiglipConfig too
    VisionConfig c;
    c.source = where;
    c.hidden = json_get<int>(v, "hidden_size", where);
    c.layers = json_get<int>(v, "num_hidden_layers", where);
    c.heads = json_get<int>(v, "num_attention_heads", where);
    c.intermediate = json_get<int>(v, "intermediate_size", where);
    c.image_size = json_get<int>(v, "image_size", where);
    c.patch_size = json_get<int>(v, "patch_size", where);
    c.channels = json_get_or<int>(v, "num_channels", 3, where);
    c.eps = json_get_or<double>(v, "layer_norm_eps", 1e-6, where);
    for (auto [val, key] : {std::pair{c.hidden, "hidden_size"}, {c.layers, "num_hidden_layers"},
                            {c.heads, "num_attention_heads"}, {c.intermediate, "intermediate_size"},
                            {c.image_size, "image_size"}, {c.patch_size, "patch_size"}})
        require_positive(val, key, where);
    require_layer_count(c.layers, "num_hidden_layers", where);
    if (c.patch_size > c.image_size)
        fail(where, ": patch_size ", c.patch_size, " is larger than image_size ", c.image_size);
    if (c.hidden % c.heads) fail(where, ": hidden_size ", c.hidden, " is not divisible by ", c.heads, " heads");
    if (c.channels != 3) fail(where, ": num_channels is ", c.channels, ", but the frames are RGB (3 channels)");
    if (!(std::isfinite(c.eps) && c.eps > 0)) fail(where, ": \"layer_norm_eps\" must be positive, got ", c.eps);
    std::string act = json_get_or<std::string>(v, "hidden_act", "gelu_pytorch_tanh", where);
    if (act != "gelu_pytorch_tanh") fail(where, ": unsupported SigLIP hidden_act \"", act, "\"");
    return c;
}

AudioConfig audio_from_json(const json& j, const std::string& where) {
    AudioConfig c;
    c.source = where;
    c.d_model = json_get<int>(j, "d_model", where);
    c.layers = json_get<int>(j, "encoder_layers", where);
    c.heads = json_get<int>(j, "encoder_attention_heads", where);
    c.ffn = json_get<int>(j, "encoder_ffn_dim", where);
    c.mel_bins = json_get_or<int>(j, "num_mel_bins", 128, where);
    c.max_positions = json_get_or<int>(j, "max_source_positions", 1500, where);
    for (auto [val, key] : {std::pair{c.d_model, "d_model"}, {c.layers, "encoder_layers"},
                            {c.heads, "encoder_attention_heads"}, {c.ffn, "encoder_ffn_dim"},
                            {c.mel_bins, "num_mel_bins"}, {c.max_positions, "max_source_positions"}})
        require_positive(val, key, where);
    require_layer_count(c.layers, "encoder_layers", where);
    if (c.d_model % c.heads) fail(where, ": d_model ", c.d_model, " is not divisible by ", c.heads, " heads");
    std::string act = json_get_or<std::string>(j, "activation_function", "gelu", where);
    if (act != "gelu") fail(where, ": unsupported Whisper activation_function \"", act, "\"");
    return c;
}

}  // namespace

VisionConfig builtin_vision_config(const std::string& hub_id) {
    if (hub_id == "google/siglip2-so400m-patch14-384" || hub_id == "google/siglip-so400m-patch14-384") {
        VisionConfig c;
        c.source = "built-in " + hub_id;
        c.hidden = 1152, c.layers = 27, c.heads = 16, c.intermediate = 4304;
        c.image_size = 384, c.patch_size = 14, c.channels = 3, c.eps = 1e-6;
        return c;
    }
    fail("unknown vision tower \"", hub_id,
         "\": not a directory with a config.json and not a built-in id (google/siglip2-so400m-patch14-384)");
}

AudioConfig builtin_audio_config(const std::string& hub_id) {
    if (hub_id == "openai/whisper-large-v3") {
        AudioConfig c;
        c.source = "built-in " + hub_id;
        c.d_model = 1280, c.layers = 32, c.heads = 20, c.ffn = 5120;
        c.mel_bins = 128, c.max_positions = 1500;
        return c;
    }
    fail("unknown audio tower \"", hub_id,
         "\": not a directory with a config.json and not a built-in id (openai/whisper-large-v3)");
}

ModelConfig load_config(const std::string& dir) {
    fs::path p = fs::path(dir) / "config.json";
    if (!fs::is_directory(dir)) fail(dir, ": not a checkpoint directory");
    if (!fs::exists(p)) fail(dir, ": no config.json (is this a Hugging Face checkpoint directory?)");
    return config_from_json(io::read_json_file(p.string()), dir);
}

ModelConfig config_from_json(const json& j, const std::string& dir) {
    std::string where = (fs::path(dir) / "config.json").string();
    if (!j.is_object()) fail(where, ": not a JSON object");
    ModelConfig c;
    c.dir = dir;
    c.model_type = json_get_or<std::string>(j, "model_type", "", where);
    c.family = &family_for(j, where);
    c.family_warning = family_disagreement(j, *c.family, where);
    try {
        c.family->read_config(j, where, c);
    } catch (const Error& e) {
        // A config of another family fails on its keys: the disagreement says why.
        if (c.family_warning.empty()) throw;
        fail(e.what(), " (", c.family_warning, ")");
    }
    return c;
}

void read_decoder_shape(const json& j, const std::string& where, LlmConfig& l) {
    l.hidden = io::json_get<int>(j, "hidden_size", where);
    l.intermediate = io::json_get<int>(j, "intermediate_size", where);
    l.layers = io::json_get<int>(j, "num_hidden_layers", where);
    l.heads = io::json_get<int>(j, "num_attention_heads", where);
    l.kv_heads = io::json_get_or<int>(j, "num_key_value_heads", l.heads, where);
    l.head_dim = io::json_get_or<int>(j, "head_dim", l.heads > 0 ? l.hidden / l.heads : 0, where);
    l.vocab = io::json_get<int>(j, "vocab_size", where);
    for (auto [val, key] : {std::pair{l.hidden, "hidden_size"}, {l.intermediate, "intermediate_size"},
                            {l.layers, "num_hidden_layers"}, {l.heads, "num_attention_heads"},
                            {l.kv_heads, "num_key_value_heads"}, {l.head_dim, "head_dim"},
                            {l.vocab, "vocab_size"}})
        io::require_positive(val, key, where);
    if (l.heads % l.kv_heads)
        fail(where, ": num_attention_heads ", l.heads, " is not a multiple of num_key_value_heads ", l.kv_heads);
    require_layer_count(l.layers, "num_hidden_layers", where);
    if (l.hidden % 2) fail(where, ": hidden_size must be even for the sinusoidal positions");
}

void check_decoder_numbers(const LlmConfig& l, const std::string& where) {
    const auto positive = [&](double v, const char* key) {
        if (!(std::isfinite(v) && v > 0)) fail(where, ": \"", key, "\" must be positive, got ", v);
    };
    positive(l.rms_eps, "rms_norm_eps");
    positive(l.rope_theta, "rope_theta");
    positive(l.query_pre_attn_scalar, "query_pre_attn_scalar");
    require_positive(l.max_positions, "max_position_embeddings", where, 1 << 28);
    if (l.head_dim % 2) fail(where, ": head_dim ", l.head_dim, " must be even for RoPE");
    for (auto [v, key] :
         {std::pair{l.attn_softcap, "attn_logit_softcapping"}, {l.final_softcap, "final_logit_softcapping"}})
        if (!(std::isfinite(v) && v >= 0)) fail(where, ": \"", key, "\" must not be negative, got ", v);
    if (l.sliding_window < 0) fail(where, ": \"sliding_window\" must not be negative, got ", l.sliding_window);
    std::vector<std::pair<int, const char*>> ids = {{l.bos_id, "bos_token_id"}, {l.eos_id, "eos_token_id"}};
    for (int id : l.eos_ids) ids.push_back({id, "eos_token_id"});
    for (auto [id, key] : ids)
        if (id < 0 || id >= l.vocab) fail(where, ": \"", key, "\" ", id, " is outside the vocabulary of ", l.vocab);
}

void check_rope_scaling(const json& j, const std::string& where, const char* family) {
    const auto it = j.find("rope_scaling");
    if (it == j.end() || it->is_null()) return;
    std::string type;  // transformers reads "rope_type" where present, else the older "type"
    if (it->is_object()) {
        const auto key = it->contains("rope_type") ? it->find("rope_type") : it->find("type");
        if (key != it->end() && key->is_string()) type = key->get<std::string>();
    }
    if (type == "default") return;  // the plain RoPE: any factor beside it is unused
    const auto cut = [](std::string text) {  // at most 80 bytes, not inside a UTF-8 character
        if (text.size() <= 80) return text;
        size_t n = 77;
        while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
        return text.substr(0, n) + "...";
    };
    fail(where, ": \"rope_scaling\" ", type.empty() ? cut(it->dump()) : "of type \"" + cut(type) + "\"",
         " is not supported: the engine computes ", family, "'s plain RoPE only, where the official "
         "code would scale the rotary frequencies (null or type \"default\" are plain)");
}

void read_media_config(const json& j, const std::string& where, ModelConfig& c) {
    MediaConfig& m = c.mm;
    m.vision_tower = json_get_or<std::string>(j, "mm_vision_tower", "", where);
    m.audio_tower = json_get_or<std::string>(j, "mm_audio_tower", "", where);
    m.select_layer = json_get_or<int>(j, "mm_vision_select_layer", -2, where);
    m.image_pool = json_get_or<int>(j, "mm_image_pool_size", 2, where);
    m.audio_pool = json_get_or<int>(j, "mm_audio_pool_size", 5, where);
    m.time_interval = json_get_or<int>(j, "mm_time_interval", 10000, where);
    m.mm_std = json_get_or<double>(j, "mm_std", 0.0, where);
    m.projector_type = json_get_or<std::string>(j, "mm_projector_type", "mlp2x_gelu", where);
    m.input_type = json_get_or<std::string>(j, "mm_input_type", "video", where);
    if (m.projector_type != "mlp2x_gelu")
        fail(where, ": mm_projector_type \"", m.projector_type, "\" is not supported (only mlp2x_gelu)");
    if (m.input_type != "video") fail(where, ": mm_input_type \"", m.input_type, "\" is not supported (only video)");
    require_positive(m.image_pool, "mm_image_pool_size", where);
    require_positive(m.audio_pool, "mm_audio_pool_size", where);
    if (m.time_interval < 2) fail(where, ": mm_time_interval must be at least 2");
    if (m.vision_tower.empty()) fail(where, ": missing key \"mm_vision_tower\"");
    if (m.audio_tower.empty()) fail(where, ": missing key \"mm_audio_tower\"");

    if (auto d = tower_dir(m.vision_tower, c.dir); !d.empty()) {
        std::string f = (fs::path(d) / "config.json").string();
        c.vision = vision_from_json(io::read_json_file(f), f);
    } else {
        c.vision = builtin_vision_config(m.vision_tower);
    }
    if (auto d = tower_dir(m.audio_tower, c.dir); !d.empty()) {
        std::string f = (fs::path(d) / "config.json").string();
        c.audio = audio_from_json(io::read_json_file(f), f);
    } else {
        c.audio = builtin_audio_config(m.audio_tower);
    }
    int vl = c.vision_layers_used();
    if (vl < 1 || vl > c.vision.layers)
        fail(where, ": mm_vision_select_layer ", m.select_layer, " does not fit a ", c.vision.layers,
             "-layer vision tower");
}

int ModelConfig::vision_layers_used() const {
    // hidden_states has L+1 entries (embeddings first); index s (negative from the end).
    int s = mm.select_layer;
    return s < 0 ? vision.layers + 1 + s : s;
}

json config_to_json(const ModelConfig& c) {
    const LlmConfig& l = c.llm;
    return {
        {"model_type", c.model_type},
        {"family", c.family ? c.family->name() : ""},
        {"llm",
         {{"hidden", l.hidden}, {"intermediate", l.intermediate}, {"layers", l.layers}, {"heads", l.heads},
          {"kv_heads", l.kv_heads}, {"head_dim", l.head_dim}, {"vocab", l.vocab},
          {"sliding_window", l.sliding_window}, {"query_pre_attn_scalar", l.query_pre_attn_scalar},
          {"rope_theta", l.rope_theta}, {"attn_softcap", l.attn_softcap}, {"final_softcap", l.final_softcap},
          {"tie_embeddings", l.tie_embeddings}}},
        {"vision",
         {{"source", c.vision.source}, {"hidden", c.vision.hidden}, {"layers", c.vision.layers},
          {"layers_used", c.vision_layers_used()}, {"heads", c.vision.heads},
          {"intermediate", c.vision.intermediate}, {"image_size", c.vision.image_size},
          {"patch_size", c.vision.patch_size}}},
        {"audio",
         {{"source", c.audio.source}, {"d_model", c.audio.d_model}, {"layers", c.audio.layers},
          {"heads", c.audio.heads}, {"ffn", c.audio.ffn}, {"mel_bins", c.audio.mel_bins},
          {"max_positions", c.audio.max_positions}}},
        {"media",
         {{"image_pool", c.mm.image_pool}, {"audio_pool", c.mm.audio_pool}, {"time_interval", c.mm.time_interval},
          {"select_layer", c.mm.select_layer}, {"projector", c.mm.projector_type}}},
    };
}

}  // namespace vidi::model
