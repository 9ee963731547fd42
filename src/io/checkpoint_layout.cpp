// The tensor names and shapes a Vidi checkpoint must hold, derived from its config
// (SPEC.md §1; Hugging Face Gemma2, SiglipVisionModel and WhisperEncoder naming).
#include <string>

#include "io/checkpoint.h"

namespace vidi::io {

namespace {

class LayoutBuilder {
public:
    explicit LayoutBuilder(std::vector<ExpectedTensor>& out) : out_(out) {}

    // Every following tensor belongs to `c`, is required iff used, and is named prefix + suffix.
    void section(Component c, std::string prefix, bool used = true) {
        component_ = c;
        prefix_ = std::move(prefix);
        used_ = used;
    }
    void add(const std::string& suffix, Shape shape, TensorKind kind) {
        out_.push_back({prefix_ + suffix, std::move(shape), component_, kind, used_, used_});
    }
    void make_last_optional() { out_.back().required = false; }
    void linear(const std::string& name, int64_t out, int64_t in, bool bias = true) {
        add(name + ".weight", {out, in}, TensorKind::matrix);
        if (bias) add(name + ".bias", {out}, TensorKind::bias);
    }
    void layer_norm(const std::string& name, int64_t width) {
        add(name + ".weight", {width}, TensorKind::norm_scale);
        add(name + ".bias", {width}, TensorKind::bias);
    }

private:
    std::vector<ExpectedTensor>& out_;
    Component component_ = Component::llm;
    std::string prefix_;
    bool used_ = true;
};

void add_llm(LayoutBuilder& b, const ModelConfig& c) {
    const LlmConfig& l = c.llm;
    const int64_t D = l.hidden, q = int64_t(l.heads) * l.head_dim, kv = int64_t(l.kv_heads) * l.head_dim;
    b.section(Component::llm, "model.");
    b.add("embed_tokens.weight", {l.vocab, D}, TensorKind::matrix);
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
    b.add("lm_head.weight", {l.vocab, D}, TensorKind::matrix);
    b.make_last_optional();
}

void add_vision(LayoutBuilder& b, const ModelConfig& c, const std::string& prefix) {
    const VisionConfig& v = c.vision;
    const int64_t C = v.hidden, I = v.intermediate, g = v.grid();
    b.section(Component::vision, prefix);
    b.add("embeddings.patch_embedding.weight", {C, v.channels, v.patch_size, v.patch_size}, TensorKind::matrix);
    b.add("embeddings.patch_embedding.bias", {C}, TensorKind::bias);
    b.add("embeddings.position_embedding.weight", {g * g, C}, TensorKind::matrix);
    const int used_layers = c.vision_layers_used();
    for (int i = 0; i < v.layers; ++i) {
        // select_layer -2 reads the hidden state before the last layer: later layers are unused.
        b.section(Component::vision, prefix, i < used_layers);
        std::string p = "encoder.layers." + std::to_string(i) + ".";
        b.layer_norm(p + "layer_norm1", C);
        b.layer_norm(p + "layer_norm2", C);
        for (const char* n : {"q_proj", "k_proj", "v_proj", "out_proj"}) b.linear(p + "self_attn." + n, C, C);
        b.linear(p + "mlp.fc1", I, C);
        b.linear(p + "mlp.fc2", C, I);
    }
    // Known but unused: the post-layernorm and the attention-pooling head.
    b.section(Component::vision, prefix, false);
    b.layer_norm("post_layernorm", C);
    b.add("head.probe", {1, 1, C}, TensorKind::matrix);
    b.add("head.attention.in_proj_weight", {3 * C, C}, TensorKind::matrix);
    b.add("head.attention.in_proj_bias", {3 * C}, TensorKind::bias);
    b.linear("head.attention.out_proj", C, C);
    b.layer_norm("head.layernorm", C);
    b.linear("head.mlp.fc1", I, C);
    b.linear("head.mlp.fc2", C, I);
}

void add_audio(LayoutBuilder& b, const ModelConfig& c) {
    const AudioConfig& a = c.audio;
    const int64_t A = a.d_model;
    b.section(Component::audio, kAudioPrefix);
    b.add("conv1.weight", {A, a.mel_bins, 3}, TensorKind::matrix);
    b.add("conv1.bias", {A}, TensorKind::bias);
    b.add("conv2.weight", {A, A, 3}, TensorKind::matrix);
    b.add("conv2.bias", {A}, TensorKind::bias);
    b.add("embed_positions.weight", {a.max_positions, A}, TensorKind::matrix);
    for (int i = 0; i < a.layers; ++i) {
        std::string p = "layers." + std::to_string(i) + ".";
        b.linear(p + "self_attn.q_proj", A, A);
        b.linear(p + "self_attn.k_proj", A, A, false);  // Whisper's k_proj has no bias
        b.linear(p + "self_attn.v_proj", A, A);
        b.linear(p + "self_attn.out_proj", A, A);
        b.layer_norm(p + "self_attn_layer_norm", A);
        b.linear(p + "fc1", a.ffn, A);
        b.linear(p + "fc2", A, a.ffn);
        b.layer_norm(p + "final_layer_norm", A);
    }
    b.layer_norm("layer_norm", A);
}

void add_glue(LayoutBuilder& b, const ModelConfig& c) {
    const int64_t D = c.llm.hidden, p = c.mm.image_pool;
    b.section(Component::glue, "model.mm_rand_");
    b.linear("img_projector.model.0", D, c.vision.hidden * p * p);
    b.linear("img_projector.model.2", D, D);
    b.add("img_norm.weight", {D}, TensorKind::norm_scale);
    for (const char* axis : {"h", "w", "t"}) {
        std::string n = std::string("pos_") + axis + ".mlp.";
        b.linear(n + "0", D, D);
        b.linear(n + "2", D, D);
    }
    b.add("aud_pool.weight", {D, c.audio.d_model, c.mm.audio_pool}, TensorKind::matrix);  // Conv1d, no bias
    b.linear("aud_projector.model.0", D, D);
    b.linear("aud_projector.model.2", D, D);
    b.add("aud_norm.weight", {D}, TensorKind::norm_scale);
    b.add("llm_norm.weight", {D}, TensorKind::norm_scale);
}

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c, const std::string& vision_prefix) {
    std::vector<ExpectedTensor> out;
    LayoutBuilder b(out);
    add_llm(b, c);
    add_vision(b, c, vision_prefix);
    add_audio(b, c);
    add_glue(b, c);
    return out;
}

}  // namespace vidi::io
