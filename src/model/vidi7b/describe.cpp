// `vidi inspect`'s architecture lines for a Vidi-7B checkpoint.
#include <sstream>

#include "model/common/tower_layout.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

Summary describe(const ModelConfig& c, const io::TensorStore& store) {
    const LlmConfig& l = c.llm;
    const int g = c.vision.grid(), k = conv_kernel(c), side = c.mm.image_pool;
    Summary s;
    std::ostringstream llm, vision, audio, media;
    llm << c.model_type << " (Mistral, decomposed attention): " << l.layers << " layers, D " << l.hidden << ", "
        << l.heads << " heads / " << l.kv_heads << " KV heads, head dim " << l.head_dim << ", MLP " << l.intermediate
        << " (SwiGLU), vocab " << l.vocab << ", rope theta " << l.rope_theta << ", sliding window "
        << (l.sliding_window ? std::to_string(l.sliding_window) + " (every layer)" : std::string("none"))
        << (l.tie_embeddings ? ", tied lm_head" : ", own lm_head");
    vision << "SigLIP (" << c.vision.source << "): " << c.vision.layers << " layers (" << c.vision_layers_used()
           << " used), width " << c.vision.hidden << ", " << c.vision.heads << " heads, MLP " << c.vision.intermediate
           << ", " << c.vision.image_size << " px / patch " << c.vision.patch_size << " (" << g << "x" << g << ")";
    audio << "Whisper encoder (" << c.audio.source << "): " << c.audio.layers << " layers, width " << c.audio.d_model
          << ", " << c.audio.heads << " heads, FFN " << c.audio.ffn << ", " << c.audio.mel_bins << " mel bins, "
          << c.audio.max_positions << " positions";
    media << "image pool " << side << ": conv " << k << "x" << k << " to " << conv_grid_side(c) << "x"
          << conv_grid_side(c) << ", bilinear to " << side << "x" << side << " (" << side * side
          << " tokens a frame); audio pool " << c.mm.audio_pool << ", time interval " << c.mm.time_interval
          << ", select layer " << c.mm.select_layer;
    s.lines = {{"LLM", llm.str()}, {"vision", vision.str()}, {"audio", audio.str()}, {"media", media.str()}};
    s.json = config_to_json(c);
    s.json["vision_prefix"] = detect_vision_prefix(store);
    s.json["media"]["image_conv_kernel"] = k;
    s.json["media"]["tokens_per_frame"] = side * side;
    return s;
}

}  // namespace vidi::model::vidi7b
