// libFuzzer: the media-token files of the serve disk cache (Engine::load_video: safetensors
// header, the model fingerprint, duration/frames/grid metadata, tensor shapes, then the media
// K/V rebuilt from the tokens) on the tiny checkpoint, CPU backend.
#include "fuzz_support.h"
#include "vidi/vidi.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static std::unique_ptr<vidi::Engine> engine = [] {
        vidi::EngineOptions o;
        o.model_dir = vidi::fuzz::tiny_model_dir();
        o.backend = "cpu";
        o.threads = 1;
        return vidi::Engine::open(o);
    }();
    static vidi::fuzz::ScratchFile file("tokens");
    const std::string path = file.write(data, size);
    try {
        auto video = engine->load_video(path);
        if (video->duration() < 0 || video->frames() < 0) std::abort();
    } catch (const vidi::Error&) {
    }
    return 0;
}
