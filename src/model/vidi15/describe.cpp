// `vidi inspect`'s architecture lines for a Vidi1.5 checkpoint.
#include <sstream>

#include "model/common/tower_layout.h"
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

Summary describe(const ModelConfig& c, const io::TensorStore& store) {
    const LlmConfig& l = c.llm;
    const int64_t projector_in = int64_t(c.vision.hidden) * c.mm.image_pool * c.mm.image_pool;
    Summary s;
    std::ostringstream llm, vision, audio, media;
    llm << c.model_type << " (Gemma2, decomposed attention): " << l.layers << " layers, D " << l.hidden << ", "
        << l.heads << " heads / " << l.kv_heads << " KV heads, head dim " << l.head_dim << ", MLP " << l.intermediate
        << ", vocab " << l.vocab << ", sliding window " << l.sliding_window << ", softcaps " << l.attn_softcap << "/"
        << l.final_softcap << (store.has("lm_head.weight") && !l.tie_embeddings ? ", own lm_head" : ", tied lm_head");
    vision << "SigLIP (" << c.vision.source << "): " << c.vision.layers << " layers (" << c.vision_layers_used()
           << " used), width " << c.vision.hidden << ", " << c.vision.heads << " heads, MLP " << c.vision.intermediate
           << ", " << c.vision.image_size << " px / patch " << c.vision.patch_size << " (" << c.vision.grid() << "x"
           << c.vision.grid() << ")";
    audio << "Whisper encoder (" << c.audio.source << "): " << c.audio.layers << " layers, width " << c.audio.d_model
          << ", " << c.audio.heads << " heads, FFN " << c.audio.ffn << ", " << c.audio.mel_bins << " mel bins, "
          << c.audio.max_positions << " positions";
    media << "image pool " << c.mm.image_pool << " (projector in " << projector_in << "), audio pool "
          << c.mm.audio_pool << ", time interval " << c.mm.time_interval << ", select layer " << c.mm.select_layer;
    s.lines = {{"LLM", llm.str()}, {"vision", vision.str()}, {"audio", audio.str()}, {"media", media.str()}};
    s.json = config_to_json(c);
    s.json["vision_prefix"] = detect_vision_prefix(store);
    s.json["media"]["image_projector_in"] = projector_in;
    return s;
}

}  // namespace vidi::model::vidi15
