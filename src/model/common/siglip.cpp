#include "model/common/siglip.h"

#include <cmath>

#include "model/common/tower_layout.h"
#include "model/common/weights.h"

namespace vidi::model {

SiglipVision::SiglipVision(const ModelConfig& config, const WeightLoader& root, const std::string& prefix)
    : cfg_(config.vision), be_(root.backend()) {
    const int64_t C = cfg_.hidden, p = cfg_.patch_size, G = cfg_.grid(), I = cfg_.intermediate;
    VIDI_CHECK(C > 0 && cfg_.heads > 0 && C % cfg_.heads == 0, "vision tower (", cfg_.source, "): hidden size ", C,
               " is not a multiple of ", cfg_.heads, " heads");
    VIDI_CHECK(G > 0, "vision tower (", cfg_.source, "): image size ", cfg_.image_size, " / patch size ", p);
    // Released checkpoints nest the tower under "vision_model."; the golden ones do not.
    const std::string base = prefix.empty() ? detect_vision_prefix(root.store()) : prefix;
    WeightLoader w = root.at(base);

    patch_w_ = w.weight("embeddings.patch_embedding.weight", {C, cfg_.channels, p, p}).reshape({C, cfg_.channels * p * p});
    patch_b_ = w.weight("embeddings.patch_embedding.bias", {C});
    pos_ = w.activation("embeddings.position_embedding.weight", {G * G, C});
    const int used = config.vision_layers_used();
    for (int i = 0; i < used; ++i) {
        WeightLoader l = w.sub("encoder.layers." + std::to_string(i) + ".");
        layers_.push_back(Layer{
            l.weight("layer_norm1.weight", {C}), l.weight("layer_norm1.bias", {C}),
            l.linear("self_attn.q_proj.weight", {C, C}), l.weight("self_attn.q_proj.bias", {C}),
            l.linear("self_attn.k_proj.weight", {C, C}), l.weight("self_attn.k_proj.bias", {C}),
            l.linear("self_attn.v_proj.weight", {C, C}), l.weight("self_attn.v_proj.bias", {C}),
            l.linear("self_attn.out_proj.weight", {C, C}), l.weight("self_attn.out_proj.bias", {C}),
            l.weight("layer_norm2.weight", {C}), l.weight("layer_norm2.bias", {C}),
            l.linear("mlp.fc1.weight", {I, C}), l.weight("mlp.fc1.bias", {I}),
            l.linear("mlp.fc2.weight", {C, I}), l.weight("mlp.fc2.bias", {C})});
        // --compute fp8: the linears that read a LayerNorm (tower_fp8_copy_bytes counts them),
        // q, k and v joined so that they run as one GEMM.
        const Layer& L = layers_.back();
        root.keep_fp8_copies_joined(L.qkv());
        root.keep_fp8_copies({&L.fc1_w});
    }
}

void SiglipVision::attention_block(const Layer& L, Tensor& x, int64_t n) const {
    AttentionParams ap;  // images attend within themselves, no mask
    ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg_.hidden / cfg_.heads)));
    Tensor att;
    {
        const Section s = be_.section("siglip.norm, q k v, attention");
        att = be_.layer_norm_attention(x, L.ln1_w, L.ln1_b, static_cast<float>(cfg_.eps), L.qkv(), n, cfg_.heads, ap);
    }
    const Section s = be_.section("siglip.o_proj");
    be_.linear_add_(x, att, L.o_w, L.o_b);
}

Tensor SiglipVision::forward(const Tensor& pixels) const {
    const int64_t C = cfg_.hidden, G = cfg_.grid(), S = cfg_.image_size;
    VIDI_CHECK(pixels.rank() == 4 && pixels.dim(1) == cfg_.channels && pixels.dim(2) == S && pixels.dim(3) == S,
               "vision tower: expected pixels [n, ", cfg_.channels, ", ", S, ", ", S, "], got ", pixels.describe());
    const int64_t n = pixels.dim(0);
    const Section whole = be_.section("siglip");
    Tensor px = pixels.device() == be_.device() && pixels.dtype() == be_.act_dtype() ? pixels : be_.upload(pixels);
    Tensor x = be_.linear(be_.patchify(px, cfg_.patch_size), patch_w_, patch_b_);  // [n, G·G, C]
    be_.add_broadcast_(x, pos_.reshape({1, G * G, C}));
    x = x.reshape({n * G * G, C});
    const float eps = static_cast<float>(cfg_.eps);
    for (const Layer& L : layers_) {
        attention_block(L, x, n);
        const Section s = be_.section("siglip.norm, mlp");
        const Tensor h = be_.layer_norm_linears(x, L.ln2_w, L.ln2_b, eps, {{L.fc1_w, L.fc1_b, Gelu::tanh}})[0];
        be_.linear_add_(x, h, L.fc2_w, L.fc2_b);
    }
    return x.reshape({n, G * G, C});
}

}  // namespace vidi::model
