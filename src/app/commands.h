// Each `vidi` subcommand registers itself on the CLI11 app; main() wires them up.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace vidi::app {

// Adds a subcommand and returns the code to run when it is chosen (exit status).
using Runner = std::function<int()>;

Runner add_inspect(CLI::App& app);          // vidi inspect DIR [--json]
Runner add_make_checkpoint(CLI::App& app);  // vidi make-checkpoint ...

}  // namespace vidi::app
