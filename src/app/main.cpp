// vidi: the command-line front door. Every error a user can cause ends as one line
// "vidi: error: ..." and a non-zero exit status, never a crash.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <vector>

#include "app/commands.h"
#include "vidi/error.h"
#include "vidi/tools.h"

int main(int argc, char** argv) {
    vidi::name_truncated_checkpoints_on_sigbus();  // a shard truncated in place while in use
    CLI::App app{"vidi: Vidi video language models, natively (video + question -> when / what)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "vidi 0.1.0");
    std::vector<std::pair<CLI::App*, vidi::app::Runner>> commands;
    // get_subcommands() without a filter lists only the parsed ones; the filter lists all.
    auto add = [&](vidi::app::Runner r) {
        commands.emplace_back(app.get_subcommands([](CLI::App*) { return true; }).back(), std::move(r));
    };
    add(vidi::app::add_inspect(app));
    add(vidi::app::add_make_checkpoint(app));
    add(vidi::app::add_serve(app));
    add(vidi::app::add_retrieve(app));
    add(vidi::app::add_ask(app));
    add(vidi::app::add_dump(app));
    add(vidi::app::add_quantize(app));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto& [sub, run] : commands)
            if (sub->parsed()) return run();
    } catch (const vidi::Error& e) {
        std::fprintf(stderr, "vidi: error: %s\n", e.what());
        return 1;
    } catch (const std::filesystem::filesystem_error& e) {
        // A file the system refused (disk full, no permission, a symlink loop): the input's or
        // the machine's problem, named by the paths it carries, not the engine's.
        std::fprintf(stderr, "vidi: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vidi: internal error: %s\n", e.what());
        return 2;
    }
    return 1;
}
