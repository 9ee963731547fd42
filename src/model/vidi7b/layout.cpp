// The tensor names and shapes of a Vidi-7B checkpoint (docs/vidi-7b.md §1; Hugging Face
// Mistral naming for the decoder, model/common for the towers).
#include "model/common/tower_layout.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

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
        b.add(p + "input_layernorm.weight", {D}, TensorKind::norm_scale);  // w ⊙ rmsnorm(x)
        b.add(p + "post_attention_layernorm.weight", {D}, TensorKind::norm_scale);
    }
    b.add("norm.weight", {D}, TensorKind::norm_scale);
    // Mistral's output projection is its own unless tie_word_embeddings (then known, unused).
    b.section(Component::llm, "", !l.tie_embeddings);
    b.linear("lm_head", l.vocab, D, false);
    if (l.tie_embeddings) b.make_last_optional();
}

void add_glue(LayoutBuilder& b, const ModelConfig& c) {
    const int64_t D = c.llm.hidden, C = c.vision.hidden, A = c.audio.d_model, k = conv_kernel(c);
    b.section(Component::glue, "model.mm_rand_");
    b.add("img_pool.conv.weight", {C, C, k, k}, TensorKind::matrix);  // Conv2d, stride 1, no bias
    b.linear("img_projector.model.0", D, C);
    b.linear("img_projector.model.2", D, D);
    b.add("img_norm.weight", {D}, TensorKind::norm_scale);
    for (const char* axis : {"h", "w", "t"}) {  // positional MLPs: kept in the load dtype
        std::string n = std::string("pos_") + axis + ".mlp.";
        b.linear(n + "0", D, D, true, false);
        b.linear(n + "2", D, D, true, false);
    }
    b.add("aud_pool.weight", {A, A, c.mm.audio_pool}, TensorKind::matrix);  // Conv1d A→A, no bias
    b.linear("aud_projector.model.0", D, A);
    b.linear("aud_projector.model.2", D, D);
    b.add("aud_norm.weight", {D}, TensorKind::norm_scale);
    b.add("llm_norm.weight", {D}, TensorKind::norm_scale);
    // The official initialisation scales it by mm_std.
    if (c.mm.mm_std > 0) b.last().init_center = static_cast<float>(c.mm.mm_std);
}

}  // namespace

int conv_kernel(const ModelConfig& c) {
    const int g = c.vision.grid(), s = c.mm.image_pool;
    return s > 0 ? (g + s - 1) / s : 0;
}

int conv_grid_side(const ModelConfig& c) { return c.vision.grid() - conv_kernel(c) + 1; }

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

}  // namespace vidi::model::vidi7b
