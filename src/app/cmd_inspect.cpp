// `vidi inspect DIR [--json] [--values]`: architecture, parameter counts, memory needs and
// the validation verdict of a checkpoint; with --values every floating weight is read and
// checked for NaN and infinity (progress on stderr). Exit status 0 only when it is usable.
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/byte_progress.h"
#include "app/commands.h"
#include "app/json_text.h"
#include "vidi/tools.h"

namespace vidi::app {

Runner add_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand("inspect", "Show a checkpoint's architecture, sizes and validation verdict");
    auto dir = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "checkpoint directory (config.json + safetensors)")->required();
    cmd->add_flag("--json", *as_json, "print the same information as JSON");
    auto values = std::make_shared<bool>(false);
    cmd->add_flag("--values", *values,
                  "read every floating weight and check it for NaN and infinity (a corrupt download or conversion)");
    return [dir, as_json, values]() -> int {
        InspectOptions options;
        options.values = *values;
        ByteProgress progress("inspect", "of weights read", uint64_t(1) << 30);
        if (*values) options.progress = [&](uint64_t done, uint64_t total) { progress(done, total); };
        CheckpointReport r;
        try {
            r = inspect_checkpoint(*dir, options);
            progress.end_line();
        } catch (const Error& e) {
            progress.end_line();
            if (!*as_json) throw;
            std::cout << json_text({{"dir", *dir}, {"usable", false}, {"error", e.what()}}, 2) << "\n";
            return 1;
        }
        std::cout << (*as_json ? r.json + "\n" : r.text);
        return r.usable ? 0 : 1;
    };
}

}  // namespace vidi::app
