#include "model/common/tower_layout.h"

namespace vidi::model {

using io::Component;
using io::TensorKind;

std::string detect_vision_prefix(const io::TensorStore& store) {
    const std::string official = kVisionPrefixOfficial, flat = kVisionPrefixFlat;
    bool any_official = false, any_flat = false;
    for (const auto& name : store.names()) {
        if (name.compare(0, official.size(), official) == 0) any_official = true;
        else if (name.compare(0, flat.size(), flat) == 0) any_flat = true;
    }
    return any_flat && !any_official ? flat : official;
}

void LayoutBuilder::section(Component c, std::string prefix, bool used) {
    component_ = c;
    prefix_ = std::move(prefix);
    used_ = used;
}

void LayoutBuilder::add(const std::string& suffix, Shape shape, TensorKind kind) {
    io::ExpectedTensor t;
    t.name = prefix_ + suffix;
    t.shape = std::move(shape);
    t.component = component_;
    t.kind = kind;
    t.required = t.used = used_;
    out_.push_back(std::move(t));
}

void LayoutBuilder::linear(const std::string& name, int64_t out, int64_t in, bool bias) {
    add(name + ".weight", {out, in}, TensorKind::matrix);
    out_.back().linear = true;
    if (bias) add(name + ".bias", {out}, TensorKind::bias);
}

void LayoutBuilder::f32_linear(const std::string& name, int64_t out, int64_t in) {
    add(name + ".weight", {out, in}, TensorKind::matrix);
    out_.back().f32 = true;
    add(name + ".bias", {out}, TensorKind::bias);
    out_.back().f32 = true;
}

void LayoutBuilder::layer_norm(const std::string& name, int64_t width) {
    add(name + ".weight", {width}, TensorKind::norm_scale);
    add(name + ".bias", {width}, TensorKind::bias);
}

void add_siglip_tensors(LayoutBuilder& b, const ModelConfig& c, const std::string& prefix) {
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

void add_whisper_tensors(LayoutBuilder& b, const ModelConfig& c) {
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

}  // namespace vidi::model
