#include "runtime/token_files.h"

namespace vidi::runtime {

void save_tokens(LoadedModel& m, const MediaTokens& t, const std::string& path) {
    // In the tokens' own dtype: bf16 on a GPU, half an f32 file and no conversion on the way
    // down (a 10-minute video's tokens: 0.47 GB). load_tokens() takes either.
    auto download = [&](const Tensor& x) {
        Tensor host = Tensor::empty(x.shape(), x.dtype());
        m.backend().copy_(host, x);
        return host;
    };
    std::vector<std::pair<std::string, Tensor>> tensors{{"image_tokens", download(t.image)}};
    if (t.audio.defined()) tensors.emplace_back("audio_tokens", download(t.audio));
    io::save_safetensors(path, tensors,
                         {{"vidi_model", m.fingerprint()},
                          {"duration", cat(t.duration)},
                          {"frames", cat(t.frames)},
                          {"grid_h", cat(t.grid_h)},
                          {"grid_w", cat(t.grid_w)}});
}

MediaTokens load_tokens(LoadedModel& m, const std::string& path) {
    auto f = io::SafetensorsFile::open(path);
    auto meta = [&](const char* key) -> const std::string& {
        auto it = f->metadata().find(key);
        if (it == f->metadata().end()) fail(path, ": not a vidi media file (no '", key, "' metadata)");
        return it->second;
    };
    if (meta("vidi_model").find(":weights") == std::string::npos)  // before the weights' digest (2026-12-08)
        fail(path, ": media tokens saved by an older vidi, which did not record the weights they came from; "
                   "encode the video again");
    if (meta("vidi_model") != m.fingerprint())
        fail(path, ": media tokens were made by another model (", meta("vidi_model"), ", this is ", m.fingerprint(), ")");
    MediaTokens t;
    try {
        t.duration = std::stod(meta("duration"));
        t.frames = std::stoll(meta("frames"));
        t.grid_h = std::stoll(meta("grid_h"));
        t.grid_w = std::stoll(meta("grid_w"));
    } catch (const std::logic_error&) {
        fail(path, ": corrupt media metadata");
    }
    Tensor image = f->get("image_tokens");
    if (image.shape() != Shape{t.frames * t.grid_h * t.grid_w, m.config().llm.hidden})
        fail(path, ": image_tokens ", shape_str(image.shape()), " do not match the recorded grid");
    // Kept on the host (a copy: the file may change under a mapping): encode() takes them up a
    // chunk at a time on their way into the K/V, so the device never holds them whole.
    t.image = image.clone();
    if (f->has("audio_tokens")) t.audio = f->get("audio_tokens").clone();
    return t;
}

}  // namespace vidi::runtime
