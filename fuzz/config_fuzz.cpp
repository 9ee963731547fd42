// libFuzzer: a checkpoint's config.json (JSON parsing, the family's pick, every key's type
// and range, the towers' configs) through model::load_config, in a directory that holds the
// tiny checkpoint's tower configs so that a good config reaches the end.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "model/config.h"
#include "vidi/error.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        const std::string d = vidi::fuzz::make_temp_dir("config");
        for (const char* tower : {"vision_tower", "audio_tower"}) {
            fs::create_directories(fs::path(d) / tower);
            fs::copy_file(fs::path(vidi::fuzz::tiny_model_dir()) / tower / "config.json",
                          fs::path(d) / tower / "config.json", fs::copy_options::overwrite_existing);
        }
        return d;
    }();
    std::ofstream(dir + "/config.json", std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    try {
        vidi::model::ModelConfig c = vidi::model::load_config(dir);
        (void)vidi::model::config_to_json(c).dump();
    } catch (const vidi::Error&) {
    }
    return 0;
}
