// The tensor names and shapes of a Vidi1.5 checkpoint (SPEC.md §1; Hugging Face Gemma2
// naming for the decoder, model/common for the towers).
#include "model/common/tower_layout.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

namespace {

using io::Component;
using io::TensorKind;

void add_llm(LayoutBuilder& b, const ModelConfig& c) {
    const LlmConfig& l = c.llm;
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
        for (const char* n : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                              "post_feedforward_layernorm"})
            b.add(p + n + ".weight", {D}, TensorKind::norm_offset);
    }
    b.add("norm.weight", {D}, TensorKind::norm_offset);
    // Optional: Gemma2 ties the output projection to embed_tokens; read only when untied.
    b.section(Component::llm, "", !l.tie_embeddings);
    b.linear("lm_head", l.vocab, D, false);
    b.make_last_optional();
}

void add_glue(LayoutBuilder& b, const ModelConfig& c) {
    const int64_t D = c.llm.hidden, p = c.mm.image_pool;
    b.section(Component::glue, "model.mm_rand_");
    b.linear("img_projector.model.0", D, c.vision.hidden * p * p);
    b.linear("img_projector.model.2", D, D);
    b.add("img_norm.weight", {D}, TensorKind::norm_scale);
    for (const char* axis : {"h", "w", "t"}) {  // positional MLPs: in f32
        std::string n = std::string("pos_") + axis + ".mlp.";
        b.f32_linear(n + "0", D, D);
        b.f32_linear(n + "2", D, D);
    }
    b.add("aud_pool.weight", {D, c.audio.d_model, c.mm.audio_pool}, TensorKind::matrix);  // Conv1d, no bias
    b.linear("aud_projector.model.0", D, D);
    b.linear("aud_projector.model.2", D, D);
    b.add("aud_norm.weight", {D}, TensorKind::norm_scale);
    b.add("llm_norm.weight", {D}, TensorKind::norm_scale);
    // The official initialisation centres it on mm_std.
    if (c.mm.mm_std > 0) b.last().init_center = static_cast<float>(c.mm.mm_std);
}

}  // namespace

io::ExpectedTensors expected_tensors(const ModelConfig& c, const std::string& vision_prefix) {
    io::ExpectedTensors out;
    LayoutBuilder b(out);
    add_llm(b, c);
    add_siglip_tensors(b, c, vision_prefix);
    add_whisper_tensors(b, c);
    add_glue(b, c);
    return out;
}

io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c) {
    // The official layout holds every known tensor (also the unused ones); lm_head only if untied.
    io::ExpectedTensors out;
    for (io::ExpectedTensor& t : expected_tensors(c, kVisionPrefixOfficial))
        if (t.name != "lm_head.weight" || !c.llm.tie_embeddings) out.push_back(std::move(t));
    return out;
}

}  // namespace vidi::model::vidi15
