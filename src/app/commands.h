// Each `vidi` subcommand registers itself on the CLI11 app; main() wires them up.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace vidi::app {

// Adds a subcommand and returns the code to run when it is chosen (exit status).
using Runner = std::function<int()>;

Runner add_inspect(CLI::App& app);          // vidi inspect DIR [--json]
Runner add_make_checkpoint(CLI::App& app);  // vidi make-checkpoint ...
Runner add_serve(CLI::App& app);            // vidi serve --model DIR [--port 8099]
Runner add_retrieve(CLI::App& app);         // vidi retrieve --model DIR --video F --query Q
Runner add_ask(CLI::App& app);              // vidi ask --model DIR [--video F] --question Q
Runner add_dump(CLI::App& app);             // vidi dump ... --out F.safetensors
Runner add_quantize(CLI::App& app);         // vidi quantize --model DIR --out DIR --weights int4

}  // namespace vidi::app
