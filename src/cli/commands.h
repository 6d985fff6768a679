#pragma once
// Each subcommand lives in its own file and registers itself on the root CLI11 app. Registration binds
// the flags; when the subcommand is chosen, its callback stores the work to run in `action`, which main()
// runs after parsing (so every flag is validated before any work starts).
#include <CLI/CLI.hpp>

#include <functional>

namespace dsa::cli {

using Action = std::function<int()>;

void add_bench_command(CLI::App& root, Action& action);
void add_compare_command(CLI::App& root, Action& action);
void add_eval_command(CLI::App& root, Action& action);
void add_generate_command(CLI::App& root, Action& action);
void add_info_command(CLI::App& root, Action& action);
void add_tokenize_command(CLI::App& root, Action& action);

}  // namespace dsa::cli
