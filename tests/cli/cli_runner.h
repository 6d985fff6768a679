#pragma once
// Runs the dsa binary as a user would and captures exit code, stdout and stderr separately.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dsa::test {

struct CliResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

inline std::string read_text_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// `args` is appended to the binary path verbatim (shell syntax; quote paths with spaces).
inline CliResult run_dsa(const std::string& args) {
    static int counter = 0;
    const auto dir = std::filesystem::temp_directory_path() /
                     ("dsa_cli_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(dir);
    const std::string cmd = std::string(DSA_BINARY) + " " + args + " >" + (dir / "out").string() + " 2>" +
                            (dir / "err").string() + " </dev/null";
    const int status = std::system(cmd.c_str());
    CliResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text_file(dir / "out");
    r.err = read_text_file(dir / "err");
    std::filesystem::remove_all(dir);
    return r;
}

}  // namespace dsa::test
