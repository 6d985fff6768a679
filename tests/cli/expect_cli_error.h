#pragma once
// The bad-input contract of every subcommand: a non-zero exit, nothing on stdout, and stderr ending in
// exactly one line, "dsa: error: ...", that contains `needle`. Flag errors come before any work, so that
// line is all of stderr; errors found once work has started (`after_progress`) may follow progress lines.
#include <gtest/gtest.h>

#include <string>

#include "cli_runner.h"

namespace dsa::test {

inline void expect_cli_error(const CliResult& r, const std::string& needle, bool after_progress = false) {
    EXPECT_NE(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.empty()) << "nothing on stdout on error: " << r.out;
    const size_t at = after_progress ? r.err.find("dsa: error: ") : 0;
    ASSERT_NE(at, std::string::npos) << "stderr: " << r.err;
    EXPECT_EQ(r.err.compare(at, 12, "dsa: error: "), 0) << "stderr: " << r.err;
    EXPECT_EQ(r.err.find('\n', at), r.err.size() - 1) << "the error must be one final line: " << r.err;
    EXPECT_NE(r.err.find(needle, at), std::string::npos) << "stderr: " << r.err;
}

}  // namespace dsa::test
