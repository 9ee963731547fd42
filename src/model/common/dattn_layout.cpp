#include "model/common/dattn_layout.h"

#include <algorithm>
#include <string>

namespace vidi::model {

using io::Component;
using io::TensorKind;

void add_dattn_decoder_tensors(LayoutBuilder& b, const LlmConfig& l, const std::vector<const char*>& norms,
                               TensorKind norm_kind, bool head_required) {
    const int64_t D = l.hidden, q = int64_t(l.heads) * l.head_dim, kv = int64_t(l.kv_heads) * l.head_dim;
    b.section(Component::llm, "model.");
    b.linear("embed_tokens", l.vocab, D, false);
    for (int i = 0; i < l.layers; ++i) {
        std::string p = "layers." + std::to_string(i) + ".";
        b.linear(p + "self_attn.q_proj", q, D, false);
        b.linear(p + "self_attn.k_proj", kv, D, false);
        b.linear(p + "self_attn.v_proj", kv, D, false);
        b.linear(p + "self_attn.o_proj", D, q, false);
        b.linear(p + "mlp.gate_proj", l.intermediate, D, false);
        b.linear(p + "mlp.up_proj", l.intermediate, D, false);
        b.linear(p + "mlp.down_proj", D, l.intermediate, false);
        for (const char* n : norms) b.add(p + n + ".weight", {D}, norm_kind);
    }
    b.add("norm.weight", {D}, norm_kind);
    // Tied, the output projection is embed_tokens and lm_head is known but unused.
    b.section(Component::llm, "", !l.tie_embeddings);
    b.linear("lm_head", l.vocab, D, false);
    if (!head_required) b.make_last_optional();
}

void add_media_glue_tensors(LayoutBuilder& b, const ModelConfig& c, int64_t image_in, int64_t audio_pool_out) {
    const int64_t D = c.llm.hidden;
    b.section(Component::glue, "model.mm_rand_");
    b.linear("img_projector.model.0", D, image_in);
    b.linear("img_projector.model.2", D, D);
    b.add("img_norm.weight", {D}, TensorKind::norm_scale);
    for (const char* axis : {"h", "w", "t"}) {  // positional MLPs: in f32
        std::string n = std::string("pos_") + axis + ".mlp.";
        b.f32_linear(n + "0", D, D);
        b.f32_linear(n + "2", D, D);
    }
    b.add("aud_pool.weight", {audio_pool_out, c.audio.d_model, c.mm.audio_pool}, TensorKind::matrix);  // no bias
    b.linear("aud_projector.model.0", D, audio_pool_out);
    b.linear("aud_projector.model.2", D, D);
    b.add("aud_norm.weight", {D}, TensorKind::norm_scale);
    b.add("llm_norm.weight", {D}, TensorKind::norm_scale);
    // The official initialisation centres it on mm_std.
    if (c.mm.mm_std > 0) b.last().init_center = static_cast<float>(c.mm.mm_std);
}

io::ExpectedTensors random_checkpoint_layout(io::ExpectedTensors expected, const LlmConfig& l) {
    if (l.tie_embeddings)
        std::erase_if(expected, [](const io::ExpectedTensor& t) { return t.name == "lm_head.weight"; });
    return expected;
}

}  // namespace vidi::model
