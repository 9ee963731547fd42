// The tensor names and shapes of a Vidi-7B checkpoint (docs/vidi-7b.md §1; Hugging Face
// Mistral naming for the decoder, model/common for the towers).
#include "model/common/dattn_layout.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

int conv_kernel(const ModelConfig& c) {
    const int g = c.vision.grid(), s = c.mm.image_pool;
    return s > 0 ? (g + s - 1) / s : 0;
}

int conv_grid_side(const ModelConfig& c) { return c.vision.grid() - conv_kernel(c) + 1; }

io::ExpectedTensors expected_tensors(const ModelConfig& c, const std::string& vision_prefix) {
    io::ExpectedTensors out;
    LayoutBuilder b(out);
    // Mistral: two w ⊙ rmsnorm norms a layer; its own lm_head unless tie_word_embeddings.
    add_dattn_decoder_tensors(b, c.llm, {"input_layernorm", "post_attention_layernorm"}, io::TensorKind::norm_scale,
                              !c.llm.tie_embeddings);
    add_siglip_tensors(b, c, vision_prefix);
    add_whisper_tensors(b, c);
    // The projector reads the pooled grid's cells (C); the audio pool keeps Whisper's width A.
    const int64_t C = c.vision.hidden, k = conv_kernel(c);
    add_media_glue_tensors(b, c, C, c.audio.d_model);
    b.add("img_pool.conv.weight", {C, C, k, k}, io::TensorKind::matrix);  // Conv2d, stride 1, no bias
    return out;
}

io::ExpectedTensors random_checkpoint_tensors(const ModelConfig& c) {
    return random_checkpoint_layout(expected_tensors(c, kVisionPrefixOfficial), c.llm);
}

}  // namespace vidi::model::vidi7b
