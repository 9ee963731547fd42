#include "model/vidi7b/mistral.h"

namespace vidi::model::vidi7b {

namespace {
enum Norm { input, post_attention };
}  // namespace

Mistral::Mistral(const ModelConfig& config, const WeightLoader& root)
    : DattnDecoder(config, root, {"input_layernorm", "post_attention_layernorm"}, 1.0f, NormWeight::plain, Glu::silu) {}

Tensor Mistral::after_attention(const Layer& L, Tensor& x, const Tensor& o) const {
    return be_.add_then_norm_(x, o, L.norms[post_attention], eps(), NormWeight::plain);
}

Tensor Mistral::after_mlp(const Layer& /*L*/, Tensor& x, const Tensor& y, const Tensor& w_next) const {
    return be_.add_then_norm_(x, y, w_next, eps(), NormWeight::plain);
}

}  // namespace vidi::model::vidi7b
