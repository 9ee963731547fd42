// Gemma2 decoder with Vidi's decomposed attention (SPEC.md §6), Vidi1.5's decoder: four norms
// a layer ((1 + w) ⊙ rmsnorm) around attention and MLP, GeGLU, embeddings scaled by sqrt(D),
// the sliding window on even layers, soft-capped scores and logits (model/common/dattn_decoder.h).
#pragma once

#include "model/common/dattn_decoder.h"

namespace vidi::model::vidi15 {

class Gemma2 final : public DattnDecoder {
public:
    Gemma2(const ModelConfig& config, const WeightLoader& root);

private:
    // x += post-norm(y); returns the next sub-layer's input norm(x) with weight w_next.
    Tensor add_norm(Tensor& x, const Tensor& y, const Tensor& w, const Tensor& w_next) const;
    Tensor after_attention(const Layer& L, Tensor& x, const Tensor& o) const override;
    Tensor after_mlp(const Layer& L, Tensor& x, const Tensor& y, const Tensor& w_next) const override;
    int window(int layer) const override { return layer % 2 == 0 ? cfg_.sliding_window : 0; }
};

}  // namespace vidi::model::vidi15
