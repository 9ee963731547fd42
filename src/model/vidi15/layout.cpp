// The tensor names and shapes of a Vidi1.5 checkpoint (SPEC.md §1; Hugging Face Gemma2
// naming for the decoder, model/common for the towers).
#include "model/common/dattn_layout.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

io::ExpectedTensors expected_tensors(const ModelConfig& c, const std::string& vision_prefix) {
    io::ExpectedTensors out;
    LayoutBuilder b(out);
    // Gemma2: four (1 + w) norms a layer; lm_head optional (Gemma2 ties it to embed_tokens).
    add_dattn_decoder_tensors(b, c.llm,
                              {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                               "post_feedforward_layernorm"},
                              io::TensorKind::norm_offset, false);
    add_siglip_tensors(b, c, vision_prefix);
    add_whisper_tensors(b, c);
    // The image projector reads space-to-depth cells (C·p²); the audio pool maps A to D.
    add_media_glue_tensors(b, c, int64_t(c.vision.hidden) * c.mm.image_pool * c.mm.image_pool, c.llm.hidden);
    return out;
}

io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c) {
    return random_checkpoint_layout(expected_tensors(c, kVisionPrefixOfficial), c.llm);
}

}  // namespace vidi::model::vidi15
