// `dsa generate` end to end on the bundled default model: good runs produce text and timing lines,
// every bad input gives one `dsa: error:` line naming the problem and a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.h"
#include "engine/backend.h"
#include "expect_cli_error.h"

namespace dsa::test {
namespace {

using dsa::test::expect_cli_error;

namespace fs = std::filesystem;

const std::string kModel = std::string(DSA_SOURCE_DIR) + "/models/default";
const std::string kPrompt = "It was a bright cold day in April, and the clocks were striking thirteen.";

// A fresh directory under the system temp dir, removed at scope exit.
class TempDir {
public:
    explicit TempDir(const std::string& tag) {
        static int counter = 0;
        path_ = fs::temp_directory_path() /
                ("dsa_gen_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

std::string shell_quote(const std::string& s) {
    return "'" + s + "'";
}

std::string generate_args(const std::string& extra) {
    return "generate -m " + shell_quote(kModel) + " " + extra;
}

TEST(GenerateCli, GreedyRunWritesTextAndTimings) {
    const CliResult r = run_dsa(generate_args("-n 16 --temp 0 -p " + shell_quote(kPrompt)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The prompt is echoed first, then the generated text.
    ASSERT_EQ(r.out.rfind(kPrompt, 0), 0u) << r.out;
    EXPECT_GT(r.out.size(), kPrompt.size() + 1) << "no generated text: " << r.out;
    EXPECT_EQ(r.out.find("dsa:"), std::string::npos) << "stdout must hold only text";
    EXPECT_NE(r.err.find("dsa: seed = "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("load time ="), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("prompt eval time ="), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("tokens per second"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("       eval time ="), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("total time ="), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("backend = cpu"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("attended tokens per step"), std::string::npos) << r.err;
}

TEST(GenerateCli, GreedyIsDeterministicAndPromptFileMatchesPromptFlag) {
    TempDir dir("pfile");
    const fs::path file = dir.path() / "prompt.txt";
    std::ofstream(file, std::ios::binary) << kPrompt;
    const CliResult a =
        run_dsa(generate_args("-n 12 --temp 0 --no-display-prompt -p " + shell_quote(kPrompt)));
    const CliResult b =
        run_dsa(generate_args("-n 12 --temp 0 --no-display-prompt -f " + shell_quote(file.string())));
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.out.find(kPrompt), std::string::npos) << "--no-display-prompt still printed it";
}

// Chunking is an execution detail: prefill in chunks of 3 must leave the same cache, hence the same text.
TEST(GenerateCli, ChunkedPrefillGivesTheSameTextAsOneChunk) {
    const CliResult a = run_dsa(generate_args("-n 12 --temp 0 -p " + shell_quote(kPrompt)));
    const CliResult b = run_dsa(generate_args("-n 12 --temp 0 -b 3 -p " + shell_quote(kPrompt)));
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(a.out, b.out);
}

TEST(GenerateCli, SameSeedSameSampledText) {
    const std::string args =
        generate_args("-n 24 -s 1234 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 -p " + shell_quote(kPrompt));
    const CliResult a = run_dsa(args);
    const CliResult b = run_dsa(args);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_NE(a.err.find("dsa: seed = 1234"), std::string::npos) << a.err;
}

// Sampling flags left out come from the model's generation_config.json (the bundled model sets temperature,
// top_k, top_p and repetition_penalty; min-p keeps the flag's default); given flags win.
TEST(GenerateCli, SamplingComesFromGenerationConfigUnlessGiven) {
    const CliResult a = run_dsa(generate_args("-n 2 -s 1 -p " + shell_quote(kPrompt)));
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_NE(a.err.find("dsa: sampling = temp 0.80, top-k 40, top-p 0.95, min-p 0.05, repeat-penalty 1.15 "
                         "(temperature, top_k, top_p, repetition_penalty from generation_config.json)\n"),
              std::string::npos)
        << a.err;
    const CliResult b = run_dsa(generate_args("-n 2 --temp 0 --repeat-penalty 1 -p " + shell_quote(kPrompt)));
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_NE(b.err.find(
                  "dsa: sampling = greedy, repeat-penalty 1.00 (top_k, top_p from generation_config.json)\n"),
              std::string::npos)
        << b.err;

    // do_sample: false means greedy, whatever the temperature: the same text as --temp 0.
    TempDir dir("genconfig");
    for (const char* name : {"config.json", "model.safetensors", "tokenizer.json"})
        fs::create_symlink(fs::path(kModel) / name, dir.path() / name);
    std::ofstream(dir.path() / "generation_config.json")
        << R"({"bos_token_id": 0, "eos_token_id": 1, "do_sample": false, "temperature": 0.7})";
    const std::string tail = " -n 8 --no-display-prompt -p " + shell_quote(kPrompt);
    const CliResult g = run_dsa("generate -m " + shell_quote(dir.path().string()) + tail);
    const CliResult t = run_dsa("generate -m " + shell_quote(dir.path().string()) + " --temp 0" + tail);
    ASSERT_EQ(g.exit_code, 0) << g.err;
    EXPECT_NE(
        g.err.find("dsa: sampling = greedy, repeat-penalty 1.00 (do_sample from generation_config.json)"),
        std::string::npos)
        << g.err;
    EXPECT_EQ(g.out, t.out);
}

TEST(GenerateCli, LongPromptShowsPrefillProgressPerChunk) {
    const CliResult r = run_dsa(generate_args("-n 2 --temp 0 -b 4 -p " + shell_quote(kPrompt)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("dsa: prefill 4/"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("dsa: prefill 8/"), std::string::npos) << r.err;
}

// CLI11 2.1 prints an option's captured default as "NAME TYPE=DEFAULT".
TEST(GenerateCli, HelpDocumentsEveryFlagWithItsDefault) {
    const CliResult r = run_dsa("generate --help");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* entry :
         {"-m,--model TEXT REQUIRED", "-p,--prompt TEXT", "-f,--file TEXT", "-n,--n-predict INT=128",
          "-c,--ctx-size INT=0", "-b,--batch-size INT=0", "-s,--seed INT=-1", "--temp FLOAT=0.8",
          "--top-k INT=40", "--top-p FLOAT=0.95", "--min-p FLOAT=0.05", "--repeat-penalty FLOAT=1",
          "--repeat-last-n INT=64", "--device TEXT=auto", "-t,--threads INT=0", "--no-display-prompt"}) {
        EXPECT_NE(r.out.find(entry), std::string::npos) << entry << " missing from:\n" << r.out;
    }
}

TEST(GenerateCli, MissingModelDirectory) {
    expect_cli_error(run_dsa("generate -m /nonexistent/dsa_model -p hi"), "/nonexistent/dsa_model");
}

TEST(GenerateCli, DirectoryWithoutConfigJson) {
    TempDir dir("noconfig");
    expect_cli_error(run_dsa("generate -m " + shell_quote(dir.path().string()) + " -p hi"), "config.json");
}

TEST(GenerateCli, CorruptSafetensors) {
    TempDir dir("corrupt");
    for (const auto& entry : fs::directory_iterator(kModel)) {
        fs::copy_file(entry.path(), dir.path() / entry.path().filename());
    }
    const fs::path st = dir.path() / "model.safetensors";
    ASSERT_TRUE(fs::exists(st));
    fs::resize_file(st, fs::file_size(st) / 2);
    expect_cli_error(run_dsa("generate -m " + shell_quote(dir.path().string()) + " -n 4 -p hi"),
                     "model.safetensors");
}

TEST(GenerateCli, BadNPredict) {
    expect_cli_error(run_dsa(generate_args("-n -5 -p hi")), "-n/--n-predict must be >= -1");
    const CliResult r = run_dsa(generate_args("-n abc -p hi"));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("n-predict"), std::string::npos) << r.err;
}

TEST(GenerateCli, NegativeTemperature) {
    expect_cli_error(run_dsa(generate_args("--temp -0.5 -p hi")), "--temp must be >= 0");
}

TEST(GenerateCli, TopPOutOfRange) {
    expect_cli_error(run_dsa(generate_args("--top-p 1.5 -p hi")), "--top-p must be in (0, 1]");
}

TEST(GenerateCli, OtherOutOfRangeValues) {
    expect_cli_error(run_dsa(generate_args("--min-p 2 -p hi")), "--min-p must be in [0, 1]");
    expect_cli_error(run_dsa(generate_args("--repeat-penalty 0 -p hi")), "--repeat-penalty must be > 0");
    expect_cli_error(run_dsa(generate_args("-c -1 -p hi")), "-c/--ctx-size must be >= 0");
    expect_cli_error(run_dsa(generate_args("-b -1 -p hi")), "-b/--batch-size must be >= 0");
    expect_cli_error(run_dsa(generate_args("-t -2 -p hi")), "-t/--threads must be >= 0");
}

TEST(GenerateCli, PromptAndFileAreExclusiveAndOneIsRequired) {
    expect_cli_error(run_dsa(generate_args("")), "exactly one of -p/--prompt");
    expect_cli_error(run_dsa(generate_args("-p hi -f /dev/null")), "exactly one of -p/--prompt");
}

TEST(GenerateCli, MissingPromptFile) {
    expect_cli_error(run_dsa(generate_args("-f /nonexistent/prompt.txt")),
                     "cannot read prompt file /nonexistent/prompt.txt");
}

TEST(GenerateCli, InvalidUtf8PromptFileIsNamed) {
    TempDir dir("utf8");
    const fs::path file = dir.path() / "bad.txt";
    std::ofstream(file, std::ios::binary) << "ab\xc3";
    expect_cli_error(run_dsa(generate_args("-f " + shell_quote(file.string()))),
                     "prompt file " + file.string() + ": ");
}

TEST(GenerateCli, FullContextStopsWithANote) {
    const CliResult r = run_dsa(generate_args("-c 16 -n -1 --temp 0 -p 'Once upon'"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("dsa: context full"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("context = 16"), std::string::npos) << r.err;
}

TEST(GenerateCli, PromptLongerThanTheContext) {
    std::string long_prompt;
    for (int i = 0; i < 20; ++i) long_prompt += kPrompt + " ";
    expect_cli_error(run_dsa(generate_args("-c 32 -p " + shell_quote(long_prompt))), "but the context holds");
}

TEST(GenerateCli, UnknownDevice) {
    expect_cli_error(run_dsa(generate_args("--device tpu -p hi")), "--device must be cpu, cuda or auto");
}

TEST(GenerateCli, CudaDeviceWithoutCuda) {
    if (dsa::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
    expect_cli_error(run_dsa(generate_args("--device cuda -p hi")), "CUDA");
}

}  // namespace
}  // namespace dsa::test
