#include "model/vidi15/gemma2.h"

#include <cmath>

namespace vidi::model::vidi15 {

namespace {

// sqrt(D) rounded to the activation dtype, as the reference multiplies in that dtype.
float embed_scale(int hidden, DType act) {
    float s = static_cast<float>(std::sqrt(static_cast<double>(hidden)));
    if (act == DType::bf16) s = bf16_to_f32(f32_to_bf16(s));
    if (act == DType::f16) s = f16_to_f32(f32_to_f16(s));
    return s;
}

enum Norm { input, post_attention, pre_feedforward, post_feedforward };

}  // namespace

Gemma2::Gemma2(const ModelConfig& config, const WeightLoader& root)
    : DattnDecoder(config, root,
                   {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                    "post_feedforward_layernorm"},
                   embed_scale(config.llm.hidden, root.backend().act_dtype()), NormWeight::one_plus, Glu::gelu_tanh) {}

Tensor Gemma2::add_norm(Tensor& x, const Tensor& y, const Tensor& w, const Tensor& w_next) const {
    return be_.add_rms_norm_then_norm_(x, y, w, w_next, eps(), NormWeight::one_plus);
}

Tensor Gemma2::after_attention(const Layer& L, Tensor& x, const Tensor& o) const {
    return add_norm(x, o, L.norms[post_attention], L.norms[pre_feedforward]);
}

Tensor Gemma2::after_mlp(const Layer& L, Tensor& x, const Tensor& y, const Tensor& w_next) const {
    return add_norm(x, y, L.norms[post_feedforward], w_next);
}

}  // namespace vidi::model::vidi15
