// dsa: the command-line entry point. Parses flags, runs one subcommand, turns every dsa::Error into one
// line on stderr and a non-zero exit code.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "engine/backend.h"
#include "util/error.h"

namespace {

std::string version_string() {
    std::string v = "dsa " DSA_VERSION;
    v += dsa::cuda_compiled() ? " (CUDA support compiled in)" : " (CPU only: built without CUDA support)";
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    // Warnings go to stderr with the "dsa:" prefix; stdout carries only results and generated text.
    spdlog::set_default_logger(spdlog::stderr_color_mt("dsa"));
    spdlog::set_pattern("dsa: %v");
    CLI::App app{"dsa: LLM inference with dynamic sparse attention (Quest, NSA) for Hugging Face Llama-family models"};
    app.set_version_flag("--version", version_string());
    app.require_subcommand(1);

    dsa::cli::Action action;
    dsa::cli::add_bench_command(app, action);
    dsa::cli::add_compare_command(app, action);
    dsa::cli::add_eval_command(app, action);
    dsa::cli::add_generate_command(app, action);
    dsa::cli::add_info_command(app, action);
    dsa::cli::add_tokenize_command(app, action);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // One line, like every other bad-input error; CLI11's own report would add a second line.
        std::fprintf(stderr, "dsa: error: %s (see --help)\n", e.what());
        return e.get_exit_code() != 0 ? e.get_exit_code() : 1;
    }
    try {
        return action ? action() : 0;
    } catch (const dsa::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "dsa: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        std::fprintf(stderr, "dsa: error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "dsa: error: %s\n", e.what());
        return 1;
    }
}
