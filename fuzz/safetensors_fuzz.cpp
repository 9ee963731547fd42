// libFuzzer: the safetensors reader (header JSON, dtypes, shapes, offsets, metadata) on
// arbitrary files. Every tensor it accepts is read end to end, so an offset or size that
// passes the checks but lies outside the file shows up as a fault.
#include "fuzz_support.h"
#include "io/safetensors.h"
#include "vidi/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static vidi::fuzz::ScratchFile file("safetensors");
    const std::string path = file.write(data, size);
    try {
        auto f = vidi::io::SafetensorsFile::open(path);
        volatile uint8_t sink = 0;
        for (const auto& [name, info] : f->tensors()) {
            vidi::Tensor t = f->get(name);
            if (t.nbytes() != info.nbytes) std::abort();
            const auto* bytes = static_cast<const uint8_t*>(t.raw());
            if (t.nbytes() > 0) sink = sink ^ bytes[0] ^ bytes[t.nbytes() - 1];
        }
    } catch (const vidi::Error&) {
    }
    return 0;
}
