// `vidi inspect DIR [--json]`: architecture, parameter counts, memory needs and the
// validation verdict of a checkpoint. Exit status 0 only when the checkpoint is usable.
#include <iostream>
#include <nlohmann/json.hpp>

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
    return [dir, as_json]() -> int {
        CheckpointReport r;
        try {
            r = inspect_checkpoint(*dir);
        } catch (const Error& e) {
            if (!*as_json) throw;
            std::cout << json_text({{"dir", *dir}, {"usable", false}, {"error", e.what()}}, 2) << "\n";
            return 1;
        }
        std::cout << (*as_json ? r.json + "\n" : r.text);
        return r.usable ? 0 : 1;
    };
}

}  // namespace vidi::app
