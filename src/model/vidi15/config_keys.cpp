// Vidi1.5's config.json keys: Gemma2's, then the shared mm_* and tower keys.
#include "io/json_file.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

using io::json_get_or;

void read_config(const nlohmann::json& j, const std::string& where, ModelConfig& c) {
    LlmConfig& l = c.llm;
    read_decoder_shape(j, where, l);
    l.query_pre_attn_scalar = json_get_or<double>(j, "query_pre_attn_scalar", l.head_dim, where);
    l.rms_eps = json_get_or<double>(j, "rms_norm_eps", 1e-6, where);
    l.rope_theta = json_get_or<double>(j, "rope_theta", 10000.0, where);
    l.attn_softcap = json_get_or<double>(j, "attn_logit_softcapping", 0.0, where);
    l.final_softcap = json_get_or<double>(j, "final_logit_softcapping", 0.0, where);
    l.sliding_window = json_get_or<int>(j, "sliding_window", 0, where);
    l.max_positions = json_get_or<int>(j, "max_position_embeddings", 8192, where);
    l.bos_id = json_get_or<int>(j, "bos_token_id", 2, where);
    l.eos_id = json_get_or<int>(j, "eos_token_id", 1, where);
    l.pad_id = json_get_or<int>(j, "pad_token_id", 0, where);
    l.tie_embeddings = json_get_or<bool>(j, "tie_word_embeddings", true, where);
    std::string act = json_get_or<std::string>(j, "hidden_activation", "gelu_pytorch_tanh", where);
    if (act != "gelu_pytorch_tanh") fail(where, ": unsupported hidden_activation \"", act, "\"");
    check_decoder_numbers(l, where);
    check_rope_scaling(j, where, "Vidi1.5 (Gemma-2)");
    read_media_config(j, where, c);
}

}  // namespace vidi::model::vidi15
