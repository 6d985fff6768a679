// `dsa compare` and the attention flags of `dsa generate`, run as a user would, on the bundled model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"
#include "expect_cli_error.h"

namespace dsa::test {
namespace {

const std::string kModel = std::string(DSA_SOURCE_DIR) + "/models/default";

size_t default_model_layers() {
    std::ifstream f(kModel + "/config.json");
    return nlohmann::json::parse(f)["num_hidden_layers"].get<size_t>();
}

// A prompt of about 600 tokens of English from the shared corpus, so small budgets really drop pages. The
// file is removed when the test binary exits.
class PromptFile {
public:
    PromptFile()
        : path_((std::filesystem::temp_directory_path() /
                 ("dsa_compare_prompt_" + std::to_string(::getpid()) + ".txt"))
                    .string()) {
        const std::string text = read_text_file(std::string(DSA_SHARED_DATA) + "/texts/moby-dick.txt");
        std::ofstream(path_) << text.substr(text.size() / 2, 2400);
    }
    ~PromptFile() {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

const std::string& prompt_file() {
    static const PromptFile file;
    return file.path();
}

std::string compare_args(const std::string& rest) {
    return "compare -m " + kModel + " -f " + prompt_file() + " -t 2 " + rest;
}

TEST(CompareCli, FullAgainstFullIsExact) {
    const CliResult r = run_dsa(compare_args("-n 6 --attn full --json"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["reference"], "full");
    EXPECT_GT(j["n_prompt"].get<int>(), 400);
    EXPECT_EQ(j["n_gen"], 6);
    ASSERT_EQ(j["policies"].size(), 1u);
    const nlohmann::json& p = j["policies"][0];
    EXPECT_EQ(p["attn"], "full");
    EXPECT_EQ(p["kl_mean"].get<double>(), 0.0);
    EXPECT_EQ(p["kl_max"].get<double>(), 0.0);
    EXPECT_EQ(p["top1_agreement"].get<double>(), 100.0);
    EXPECT_TRUE(p["first_divergence"].is_null());
    EXPECT_EQ(p["recall_mean"].get<double>(), 1.0);
    EXPECT_GT(p["attended_tokens_mean"].get<double>(), j["n_prompt"].get<double>());
}

// Checks one policy row of the JSON: every field, and the effect of a budget well under the prompt.
void check_row(const nlohmann::json& p, const std::string& attn, int budget, int n_prompt) {
    EXPECT_EQ(p["attn"], attn);
    EXPECT_EQ(p["budget"], budget) << attn;
    for (const char* key : {"kl_mean", "kl_max", "top1_agreement", "attended_tokens_mean", "recall_mean"}) {
        EXPECT_TRUE(p[key].is_number()) << attn << " " << key;
    }
    EXPECT_TRUE(p["first_divergence"].is_null() || p["first_divergence"].is_number_integer());
    EXPECT_GE(p["kl_mean"].get<double>(), 0.0);
    EXPECT_GE(p["kl_max"].get<double>(), p["kl_mean"].get<double>());
    EXPECT_GT(p["recall_mean"].get<double>(), 0.0);
    EXPECT_LT(p["recall_mean"].get<double>(), 1.0) << attn << " " << budget;
    EXPECT_LT(p["attended_tokens_mean"].get<double>(), n_prompt);
    ASSERT_EQ(p["recall_per_layer"].size(), default_model_layers());
    EXPECT_EQ(p["recall_per_layer"][0].get<double>(), 1.0);  // the 2 dense layers
    EXPECT_EQ(p["recall_per_layer"][1].get<double>(), 1.0);
    // Dense layers attend every cached token (more than the prompt), sparse ones at most budget + window.
    ASSERT_EQ(p["attended_per_layer"].size(), default_model_layers());
    EXPECT_GT(p["attended_per_layer"][0].get<double>(), n_prompt);
    EXPECT_EQ(p["attended_per_layer"][1], p["attended_per_layer"][0]);
    for (size_t l = 2; l < default_model_layers(); ++l)
        EXPECT_LT(p["attended_per_layer"][l].get<double>(), n_prompt) << attn << " layer " << l;
}

TEST(CompareCli, JsonHoldsEveryFieldForEveryPolicyAndBudget) {
    const CliResult r = run_dsa(compare_args("-n 4 --attn quest,window,oracle --budget 64,128 --json -v"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    const int n_prompt = j["n_prompt"].get<int>();
    ASSERT_EQ(j["policies"].size(), 6u);
    const char* names[] = {"quest", "quest", "window", "window", "oracle", "oracle"};
    for (size_t i = 0; i < 6; ++i) check_row(j["policies"][i], names[i], i % 2 == 0 ? 64 : 128, n_prompt);
    // The oracle's recall is the ceiling of every B-token selection.
    EXPECT_GE(j["policies"][4]["recall_mean"].get<double>(), j["policies"][0]["recall_mean"].get<double>());
    EXPECT_GE(j["policies"][5]["recall_mean"].get<double>(), j["policies"][1]["recall_mean"].get<double>());

    // nsa: pages of 64, the budget sets top_n (3 and 4 blocks), a 64-token window.
    const CliResult n = run_dsa(compare_args("-n 4 --attn nsa --budget 192,256 --window 64 --json -v"));
    ASSERT_EQ(n.exit_code, 0) << n.err;
    const nlohmann::json jn = nlohmann::json::parse(n.out);
    ASSERT_EQ(jn["policies"].size(), 2u);
    check_row(jn["policies"][0], "nsa", 192, n_prompt);
    check_row(jn["policies"][1], "nsa", 256, n_prompt);
}

TEST(CompareCli, TableByDefault) {
    const CliResult r = run_dsa(compare_args("-n 3 --attn full,quest --budget 64"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| attn"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| quest"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| full"), std::string::npos) << r.out;
}

// Each invalid combination: exit 1 and one line naming the flag.
void expect_error(const std::string& args, const std::string& message) {
    SCOPED_TRACE(args);
    dsa::test::expect_cli_error(run_dsa(args), "dsa: error: " + message);
}

TEST(AttnFlagsCli, InvalidCombinationsAreClearErrors) {
    for (const std::string& cmd : {"generate -m " + kModel + " -p hi -n 2 ", compare_args("-n 2 ")}) {
        expect_error(cmd + "--attn quest --budget 100",
                     "--budget 100: must be a multiple of the page size 16");
        expect_error(cmd + "--attn quest --budget 8", "--budget 8: smaller than one page (16 tokens)");
        expect_error(cmd + "--attn quest --page-size 48", "--page-size 48: must be 16, 32 or 64");
        expect_error(cmd + "--attn nsa --window -1", "--window -1: must be >= 0");
        expect_error(cmd + "--attn sparse", "--attn sparse: no preset sparse.json");
        expect_error(cmd + "--attn quest --gqa mean", "--gqa 'mean': unknown GQA reduction");
        expect_error(cmd + "--attn nsa --budget 100", "--budget 100: must be a multiple of the page size 64");
    }
    expect_error("generate -m " + kModel + " -p hi --attn quest --top-n 4",
                 "--top-n does not apply to --attn quest");
    expect_error(compare_args("-n 1 --attn quest"), "-n 1: compare needs at least 2");
    expect_error(compare_args("-n 2 --attn quest --device cuda"),
                 "--device cuda: compare needs attention recall");
    expect_error(compare_args("-n 2 --attn quest --device tpu"), "--device must be cpu, cuda or auto");
}

TEST(AttnFlagsCli, GenerateReportsAttendedTokens) {
    const CliResult r = run_dsa("generate -m " + kModel + " -f " + prompt_file() +
                                " -n 8 --temp 0 -t 2 --attn quest --budget 64 --dense-layers 0");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("attention = quest P=16 B=64"), std::string::npos) << r.err;
    // Every layer sparse: at most 64 tokens per (layer, kv head) per decode step (3 pages + the current one).
    const std::string key = "attended tokens per step = ";
    const size_t at = r.err.find(key);
    ASSERT_NE(at, std::string::npos) << r.err;
    const double attended = std::stod(r.err.substr(at + key.size()));
    EXPECT_GT(attended, 48.0);
    EXPECT_LE(attended, 64.0);
}

}  // namespace
}  // namespace dsa::test
