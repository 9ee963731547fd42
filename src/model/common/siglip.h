// The SigLIP vision tower as Hugging Face's SiglipVisionModel computes it, up to the
// hidden state the config selects (select_layer -2: the output of layer L-1 of L); no
// post-layernorm, no pooling head.
#pragma once

#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "model/common/weights.h"

namespace vidi::model {

class SiglipVision {
public:
    // `prefix` is the tower's tensor prefix; empty: detected (detect_vision_prefix).
    SiglipVision(const ModelConfig& config, const WeightLoader& root, const std::string& prefix = "");

    // pixels [n, 3, S, S] f32 (host or device) -> hidden states [n, G·G, C] on the backend.
    Tensor forward(const Tensor& pixels) const;

    int grid() const { return cfg_.grid(); }  // G = image_size / patch_size (27)
    int hidden() const { return cfg_.hidden; }

private:
    struct Layer {
        Tensor ln1_w, ln1_b;
        QTensor q_w;
        Tensor q_b;
        QTensor k_w;
        Tensor k_b;
        QTensor v_w;
        Tensor v_b;
        QTensor o_w;
        Tensor o_b, ln2_w, ln2_b;
        QTensor fc1_w;
        Tensor fc1_b;
        QTensor fc2_w;
        Tensor fc2_b;
        std::array<NormedLinear, 3> qkv() const { return {{{q_w, q_b}, {k_w, k_b}, {v_w, v_b}}}; }
    };
    void attention_block(const Layer& L, Tensor& x, int64_t n) const;  // x += attention(norm(x))

    VisionConfig cfg_;
    Backend& be_;
    Tensor patch_w_, patch_b_, pos_;  // patch_w_ viewed [C, 3·p·p]; pos_ [G·G, C] activations
    std::vector<Layer> layers_;
};

}  // namespace vidi::model
