// Mistral decoder with Vidi's decomposed attention (docs/vidi-7b.md §6), Vidi-7B's decoder: two
// norms a layer (w ⊙ rmsnorm) before attention and MLP and none after, SwiGLU, no embedding
// scale, the sliding window (when set) on every layer, no soft-caps, scale hd^-0.5, its own
// lm_head unless tied (model/common/dattn_decoder.h). Media tokens take the same update:
// m += o_proj(V), then m += mlp(post_attention_layernorm(m)).
#pragma once

#include "model/common/dattn_decoder.h"

namespace vidi::model::vidi7b {

class Mistral final : public DattnDecoder {
public:
    Mistral(const ModelConfig& config, const WeightLoader& root);

private:
    Tensor after_attention(const Layer& L, Tensor& x, const Tensor& o) const override;
    Tensor after_mlp(const Layer& L, Tensor& x, const Tensor& y, const Tensor& w_next) const override;
    int window(int /*layer*/) const override { return cfg_.sliding_window; }
};

}  // namespace vidi::model::vidi7b
