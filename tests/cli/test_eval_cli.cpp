// `dsa eval passkey` and `dsa eval ppl` end to end on the bundled model with tiny contexts: the JSON
// fields and their consistency, the table, and one `dsa: error:` line for each kind of bad flag.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cli_runner.h"
#include "expect_cli_error.h"

namespace dsa::test {
namespace {

using dsa::test::expect_cli_error;

const std::string kModel = std::string(DSA_SOURCE_DIR) + "/models/default";
const std::string kBook = std::string(DSA_SHARED_DATA) + "/texts/pride-and-prejudice.txt";

std::string quote(const std::string& s) {
    return "'" + s + "'";
}

std::string passkey_args(const std::string& extra) {
    return "eval passkey -m " + quote(kModel) + " --text " + quote(kBook) + " --device cpu " + extra;
}

std::string ppl_args(const std::string& extra) {
    return "eval ppl -m " + quote(kModel) + " --device cpu " + extra;
}

TEST(EvalPasskeyCli, JsonHasEveryField) {
    const CliResult r = run_dsa(passkey_args("--ctx 128,160 --depth 0,1 --trials 1 -s 3 --json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["command"], "passkey");
    EXPECT_EQ(j["device"], "cpu");
    EXPECT_EQ(j["seed"], 3);
    EXPECT_EQ(j["trials"], 1);
    EXPECT_EQ(j["contexts"], nlohmann::json::array({128, 160}));
    EXPECT_EQ(j["depths"], nlohmann::json::array({0.0, 1.0}));
    EXPECT_NE(j["text"].get<std::string>().find("pride-and-prejudice.txt"), std::string::npos);
    ASSERT_EQ(j["runs"].size(), 1u);
    const nlohmann::json& run = j["runs"][0];
    EXPECT_EQ(run["attn"], "full");
    EXPECT_TRUE(run["budget"].is_null());
    EXPECT_EQ(run["policy"], "full P=16");
    ASSERT_EQ(run["cells"].size(), 4u);  // ctx-major: (128, 0), (128, 1), (160, 0), (160, 1)
    int correct = 0;
    int key = -1;
    for (size_t i = 0; i < 4; ++i) {
        const nlohmann::json& c = run["cells"][i];
        EXPECT_EQ(c["ctx"], i < 2 ? 128 : 160);
        EXPECT_EQ(c["depth"], i % 2 == 0 ? 0.0 : 1.0);
        EXPECT_EQ(c["trials"], 1);
        ASSERT_EQ(c["answers"].size(), 1u);
        const nlohmann::json& a = c["answers"][0];
        // The same trial key in every cell: contexts, depths and policies are compared on paired prompts.
        if (key < 0) key = a["key"].get<int>();
        EXPECT_EQ(a["key"], key);
        EXPECT_GE(key, 10000);
        EXPECT_LE(key, 99999);
        EXPECT_TRUE(a["output"].is_string());
        EXPECT_EQ(c["correct"], a["correct"].get<bool>() ? 1 : 0);
        EXPECT_DOUBLE_EQ(c["accuracy"].get<double>(), c["correct"].get<double>());
        correct += c["correct"].get<int>();
        // Full attention attends every cached token: between the question's start and the context end.
        const double att = c["attended_tokens_mean"].get<double>();
        EXPECT_GT(att, c["ctx"].get<double>() - 20) << c.dump();
        EXPECT_LE(att, c["ctx"].get<double>() + 10) << c.dump();
    }
    EXPECT_DOUBLE_EQ(run["accuracy"].get<double>(), correct / 4.0);
    EXPECT_NE(r.err.find("dsa: passkey [full] ctx 128 depth 0.00 trial 1/1: key"), std::string::npos)
        << r.err;

    // Same seed, same keys and answers.
    const CliResult again = run_dsa(passkey_args("--ctx 128,160 --depth 0,1 --trials 1 -s 3 --json"));
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(nlohmann::json::parse(again.out), j);
}

TEST(EvalPasskeyCli, TableByDefaultWithTheDefaultBook) {
    // Without --text the held-out book of the shared data is found from the binary's checkout.
    const CliResult r =
        run_dsa("eval passkey -m " + quote(kModel) + " --device cpu --ctx 128 --depth 0.5 --trials 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("| attn | budget | ctx | depth 0.50 | mean | attended/step |\n", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("\n| full | - | 128 | "), std::string::npos) << r.out;
}

TEST(EvalPplCli, JsonHasEveryField) {
    const CliResult r = run_dsa(ppl_args("-f " + quote(kBook) + " -c 64 --chunks 2 -b 16 --json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["command"], "ppl");
    EXPECT_EQ(j["device"], "cpu");
    EXPECT_EQ(j["ctx"], 64);
    EXPECT_GT(j["text_tokens"].get<int>(), 100000);  // the whole book
    EXPECT_EQ(j["windows_available"], j["text_tokens"].get<int>() / 63);
    ASSERT_EQ(j["runs"].size(), 1u);
    const nlohmann::json& run = j["runs"][0];
    EXPECT_EQ(run["attn"], "full");
    EXPECT_TRUE(run["budget"].is_null());
    EXPECT_EQ(run["windows"], 2);
    EXPECT_EQ(run["tokens_scored"], 2 * 31);  // positions 32..62 of each window
    const double ppl = run["ppl"].get<double>();
    EXPECT_NEAR(std::log(ppl), run["nll_mean"].get<double>(), 1e-9);
    EXPECT_GT(ppl, 1.0);
    EXPECT_GT(run["ppl_error"].get<double>(), 0.0);
    EXPECT_LT(run["ppl_error"].get<double>(), ppl);
    EXPECT_DOUBLE_EQ(run["attended_tokens_mean"].get<double>(), 48.0);  // mean of j + 1 over j = 32..62
    EXPECT_GE(run["seconds"].get<double>(), 0.0);
    EXPECT_NE(r.err.find("dsa: ppl [full] window 2/2: ppl = "), std::string::npos) << r.err;

    // The batch size changes how the window is chunked, not the result.
    const CliResult b = run_dsa(ppl_args("-f " + quote(kBook) + " -c 64 --chunks 2 -b 7 --json"));
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_NEAR(nlohmann::json::parse(b.out)["runs"][0]["ppl"].get<double>(), ppl, 1e-4 * ppl);
}

TEST(EvalPplCli, TableShowsPplWithError) {
    const CliResult r = run_dsa(ppl_args("-f " + quote(kBook) + " -c 32 --chunks 1"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("| attn | budget | ctx | ppl | tokens scored | attended/token |\n", 0), 0u)
        << r.out;
    EXPECT_NE(r.out.find("| full | - | 32 | "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" ± "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" | 15 | "), std::string::npos) << r.out;  // 32 - 1 - 16 tokens scored
}

// A budget that covers the whole context must reproduce full attention (the policies fall back to dense
// steps); a small one must attend fewer tokens. Runs are ordered as --attn, then --budget.
TEST(EvalPasskeyCli, SparsePoliciesRunPerBudget) {
    const CliResult r = run_dsa(
        passkey_args("--ctx 128 --depth 0.5 --trials 2 --attn full,quest,window --budget 256,32 --json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["runs"].size(), 5u);
    const nlohmann::json& full = j["runs"][0];
    EXPECT_EQ(full["attn"], "full");
    const std::vector<std::pair<std::string, int>> want = {
        {"quest", 256}, {"quest", 32}, {"window", 256}, {"window", 32}};
    for (size_t i = 0; i < want.size(); ++i) {
        const nlohmann::json& run = j["runs"][i + 1];
        SCOPED_TRACE(run.dump());
        EXPECT_EQ(run["attn"], want[i].first);
        EXPECT_EQ(run["budget"], want[i].second);
        const nlohmann::json& cell = run["cells"][0];
        const double att = cell["attended_tokens_mean"].get<double>();
        const double full_att = full["cells"][0]["attended_tokens_mean"].get<double>();
        if (want[i].second == 256) {
            EXPECT_EQ(cell["answers"], full["cells"][0]["answers"]);
            EXPECT_DOUBLE_EQ(att, full_att);
        } else {
            EXPECT_LT(att, full_att);
        }
    }
    EXPECT_NE(r.err.find("dsa: passkey [quest B=32] ctx 128"), std::string::npos) << r.err;
}

TEST(EvalPplCli, SparsePoliciesScoreDecodeSteps) {
    const CliResult r = run_dsa(ppl_args(
        "-f " + quote(kBook) + " -c 64 --chunks 1 --attn full,quest --budget 64,16 --gqa max --json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["runs"].size(), 3u);
    const nlohmann::json &full = j["runs"][0], &whole = j["runs"][1], &small = j["runs"][2];
    EXPECT_EQ(whole["budget"], 64);
    EXPECT_EQ(small["budget"], 16);
    // --gqa applies to quest and is skipped for full, as in compare.
    EXPECT_EQ(small["policy"], "quest P=16 B=16 gqa=max dense_layers=2");
    EXPECT_EQ(full["policy"], "full P=16");
    // Budget 64 covers every window: the decode steps equal the chunked full-attention scoring.
    EXPECT_NEAR(whole["ppl"].get<double>(), full["ppl"].get<double>(), 1e-4 * full["ppl"].get<double>());
    EXPECT_DOUBLE_EQ(whole["attended_tokens_mean"].get<double>(), 48.0);
    EXPECT_LT(small["attended_tokens_mean"].get<double>(), 48.0);
    EXPECT_NE(small["ppl"].get<double>(), full["ppl"].get<double>());
    EXPECT_EQ(small["tokens_scored"], full["tokens_scored"]);
}

TEST(EvalCliErrors, BadFlagsGiveOneLine) {
    expect_cli_error(run_dsa(passkey_args("--ctx 0")), "--ctx '0': 0 is below the minimum 1");
    expect_cli_error(run_dsa(passkey_args("--ctx 128,abc")), "--ctx '128,abc': 'abc' is not an integer");
    expect_cli_error(run_dsa(passkey_args("--ctx 128 --depth 1.5")), "--depth '1.5': 1.5 is outside [0, 1]");
    expect_cli_error(run_dsa(passkey_args("--ctx 128 --depth 0,,1")), "--depth");
    expect_cli_error(run_dsa(passkey_args("--ctx 128 --trials 0")), "--trials must be >= 1");
    expect_cli_error(run_dsa(passkey_args("--ctx 40")), "--ctx 40: too short for a passkey prompt");
    expect_cli_error(run_dsa(passkey_args("--ctx 128 --attn nosuch")),
                     "--attn nosuch: no preset nosuch.json");
    expect_cli_error(run_dsa(passkey_args("--ctx 128 --attn quest --budget 100")),
                     "--budget 100: must be a multiple of the page size 16");
    expect_cli_error(run_dsa("eval passkey -m " + quote(kModel) + " --ctx 128 --text /nonexistent/book.txt"),
                     "--text /nonexistent/book.txt: no such file");
    expect_cli_error(run_dsa("eval passkey -m " + quote(kModel) + " --ctx 128 --device tpu"),
                     "--device must be cpu, cuda or auto");
    expect_cli_error(run_dsa(ppl_args("-c 64")), "-f/--file FILE is required");
    expect_cli_error(run_dsa(ppl_args("-f /nonexistent/text.txt -c 64")),
                     "-f /nonexistent/text.txt: no such file");
    expect_cli_error(run_dsa(ppl_args("-f " + quote(kBook) + " -c 2")), "-c/--ctx-size must be >= 4");
    expect_cli_error(run_dsa(ppl_args("-f " + quote(kBook) + " -c 64 --chunks 0")), "--chunks must be >= 1");
    expect_cli_error(run_dsa(ppl_args("-f " + quote(kBook) + " -c 64 --attn full,")), "--attn 'full,'");
    expect_cli_error(run_dsa("eval ppl -m /nonexistent/model -f " + quote(kBook) + " -c 64"),
                     "model directory /nonexistent/model does not exist");
}

TEST(EvalCliErrors, TextShorterThanOneWindow) {
    const std::string small = std::string(DSA_TEST_DATA) + "/models/llama/config.json";
    expect_cli_error(run_dsa(ppl_args("-f " + quote(small) + " -c 4096")),
                     "fewer than one window of -c 4096");
}

}  // namespace
}  // namespace dsa::test
