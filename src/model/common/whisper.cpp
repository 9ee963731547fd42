#include "model/common/whisper.h"

#include <cmath>

#include "model/common/weights.h"

namespace vidi::model {

WhisperEncoder::WhisperEncoder(const ModelConfig& config, const WeightLoader& root, const std::string& prefix)
    : cfg_(config.audio), be_(root.backend()) {
    const int64_t A = cfg_.d_model, M = cfg_.mel_bins, F = cfg_.ffn;
    VIDI_CHECK(A > 0 && cfg_.heads > 0 && A % cfg_.heads == 0, "audio tower (", cfg_.source, "): d_model ", A,
               " is not a multiple of ", cfg_.heads, " heads");
    WeightLoader w = root.at(prefix);
    conv1_w_ = w.weight("conv1.weight", {A, M, 3}).reshape({A, M * 3});
    conv1_b_ = w.weight("conv1.bias", {A});
    conv2_w_ = w.weight("conv2.weight", {A, A, 3}).reshape({A, A * 3});
    conv2_b_ = w.weight("conv2.bias", {A});
    pos_ = w.activation("embed_positions.weight", {cfg_.max_positions, A});
    ln_w_ = w.weight("layer_norm.weight", {A});
    ln_b_ = w.weight("layer_norm.bias", {A});
    for (int i = 0; i < cfg_.layers; ++i) {
        WeightLoader l = w.sub("layers." + std::to_string(i) + ".");
        layers_.push_back(Layer{
            l.weight("self_attn_layer_norm.weight", {A}), l.weight("self_attn_layer_norm.bias", {A}),
            l.linear("self_attn.q_proj.weight", {A, A}), l.weight("self_attn.q_proj.bias", {A}),
            l.linear("self_attn.k_proj.weight", {A, A}),  // Whisper's k_proj has no bias
            l.linear("self_attn.v_proj.weight", {A, A}), l.weight("self_attn.v_proj.bias", {A}),
            l.linear("self_attn.out_proj.weight", {A, A}), l.weight("self_attn.out_proj.bias", {A}),
            l.weight("final_layer_norm.weight", {A}), l.weight("final_layer_norm.bias", {A}),
            l.linear("fc1.weight", {F, A}), l.weight("fc1.bias", {F}), l.linear("fc2.weight", {A, F}),
            l.weight("fc2.bias", {A})});
        // --compute fp8: the linears that read a LayerNorm (tower_fp8_copy_bytes counts them).
        const Layer& L = layers_.back();
        root.keep_fp8_copies_joined(L.qkv());  // (one GEMM, as SigLIP's)
        root.keep_fp8_copies({&L.fc1_w});
    }
}

Tensor WhisperEncoder::forward(const Tensor& mel) const {
    const int64_t A = cfg_.d_model, H = cfg_.heads, hd = A / H;
    const bool batched = mel.rank() == 3;
    VIDI_CHECK((mel.rank() == 2 || batched) && mel.dim(-2) == cfg_.mel_bins && mel.dim(-1) == input_frames(),
               "audio tower: expected log-mel [", cfg_.mel_bins, ", ", input_frames(), "] or [pieces, ", cfg_.mel_bins,
               ", ", input_frames(), "], got ", mel.describe());
    const int64_t n = batched ? mel.dim(0) : 1, T = output_frames();
    Tensor m = mel.device() == be_.device() && mel.dtype() == be_.act_dtype() ? mel : be_.upload(mel);
    m = m.reshape({n, cfg_.mel_bins, input_frames()});
    // Conv1d(k3, s1, p1) and Conv1d(k3, s2, p1) as GEMMs over time-major [T, C] inputs, a
    // piece at a time (their zero padding is per piece); the layers then take all pieces.
    Tensor x = be_.act({n * T, A});
    for (int64_t i = 0; i < n; ++i) {
        Tensor c = be_.linear(be_.im2col_1d(be_.transpose2d(m.row(i)), 3, 1, 1), conv1_w_, conv1_b_);
        be_.gelu_(c, Gelu::erf);
        c = be_.linear(be_.im2col_1d(c, 3, 2, 1), conv2_w_, conv2_b_);
        be_.gelu_(c, Gelu::erf);
        VIDI_CHECK(c.dim(0) == T, "audio tower: the convolutions gave ", c.dim(0), " frames, expected ", T);
        Tensor dst = x.rows(i * T, (i + 1) * T);
        be_.copy_(dst, c);
    }
    Tensor x4 = x.reshape({1, n, T, A});
    be_.add_broadcast_(x4, pos_.rows(0, T).reshape({1, 1, T, A}));

    const float eps = static_cast<float>(cfg_.eps);
    AttentionParams ap;
    ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    for (const Layer& L : layers_) {
        // Pieces attend within themselves.
        const Tensor att = be_.layer_norm_attention(x, L.ln1_w, L.ln1_b, eps, L.qkv(), n, H, ap);
        be_.linear_add_(x, att, L.o_w, L.o_b);
        const Tensor h = be_.layer_norm_linears(x, L.ln2_w, L.ln2_b, eps, {{L.fc1_w, L.fc1_b, Gelu::erf}})[0];
        be_.linear_add_(x, h, L.fc2_w, L.fc2_b);
    }
    return be_.layer_norm(x, ln_w_, ln_b_, eps);
}

}  // namespace vidi::model
