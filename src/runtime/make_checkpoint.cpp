// `vidi make-checkpoint` (vidi/tools.h): a random-weight checkpoint of a config file or of a
// family's preset, in that family's official layout.
#include <filesystem>

#include "io/json_file.h"
#include "model/checkpoint.h"
#include "model/family.h"
#include "vidi/tools.h"

namespace vidi {

MakeCheckpointSummary make_checkpoint(const MakeCheckpointOptions& o) {
    if (o.config_file.empty() == o.preset.empty()) fail("make-checkpoint: give exactly one of --config or --preset");
    nlohmann::json config;
    std::filesystem::path config_dir = ".";
    if (!o.preset.empty()) {
        config = model::find_preset(o.preset).config;
    } else {
        config = io::read_json_file(o.config_file);
        if (const auto parent = std::filesystem::path(o.config_file).parent_path(); !parent.empty()) config_dir = parent;
    }
    io::RandomCheckpointOptions opt;
    opt.out_dir = o.out_dir;
    opt.seed = o.seed;
    opt.shard_bytes = o.shard_bytes;
    opt.tokenizer_model = o.tokenizer_model;
    opt.progress = o.progress;
    const io::RandomCheckpointSummary s = model::write_random_checkpoint(config, config_dir.string(), opt);
    return {s.shards, s.tensors, s.bytes};
}

std::vector<std::string> checkpoint_presets() { return model::preset_names(); }

}  // namespace vidi
