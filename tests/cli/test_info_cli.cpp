// `dsa info` end to end on a tiny hand-written checkpoint: the printed configuration, parameter count and
// KV-cache plan against values computed here from the shapes, and the error for a bad -m path.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tests/cli/cli_runner.h"
#include "tests/unit/model_fixture.h"

namespace dsa {
namespace {

using test::run_dsa;

bool has(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
}

TEST(InfoCli, PrintsConfigSizesAndKvPlan) {
    test::TempDir dir;
    test::TinyModel m = test::tiny_model("LlamaForCausalLM");
    m.config["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
    m.write(dir.path());
    const auto r = run_dsa("info -m " + dir.path().string() + " -c 1000");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string& o = r.out;
    EXPECT_TRUE(has(o, "LlamaForCausalLM")) << o;
    EXPECT_TRUE(has(o, "layers         2\n")) << o;
    EXPECT_TRUE(has(o, "hidden         32 (intermediate 48)")) << o;
    EXPECT_TRUE(has(o, "4 q / 2 kv, head_dim 8, group size 2")) << o;
    EXPECT_TRUE(has(o, "vocab          40\n")) << o;
    EXPECT_TRUE(has(o, "theta 10000, linear x2")) << o;
    EXPECT_TRUE(has(o, "tie embeddings no")) << o;
    // embed + lm_head 2*40*32, per layer 2*32 norms + (32+16+16+32)*32 attention + 3*48*32 mlp, final
    // norm 32.
    const long params = 2 * 40 * 32 + 2 * (2 * 32 + 96 * 32 + 3 * 48 * 32) + 32;
    EXPECT_TRUE(has(o, "parameters     " + std::to_string(params / 1000) + ".")) << o;
    EXPECT_TRUE(has(o, "(" + std::to_string(params) + ")")) << o;
    EXPECT_TRUE(has(o, "BF16")) << o;
    EXPECT_TRUE(has(o, "(" + std::to_string(params * 2) + " bytes)")) << o;
    // 1000 tokens = 63 pages of 16 = 1008 slots. K/V bf16: 2 * 2 layers * 2 kv heads * 8 dims * 1008 * 2
    // bytes. Metadata per (layer, page, kv head): GPU bf16 kmin/kmax + fp32 ksum + count = 2*8*2 + 8*4 + 4
    // bytes; CPU all fp32 = 3*8*4 + 4 bytes.
    const long kv_bf16 = 2L * 2 * 2 * 8 * 1008 * 2, page_heads = 2L * 63 * 2;
    const long meta_gpu = page_heads * (2 * 8 * 2 + 8 * 4 + 4), meta_cpu = page_heads * (3 * 8 * 4 + 4);
    EXPECT_TRUE(has(o, "1000 tokens = 63 pages of 16")) << o;
    EXPECT_TRUE(has(o, "(" + std::to_string(kv_bf16 + meta_gpu) + " bytes)")) << o;
    EXPECT_TRUE(has(o, "(" + std::to_string(2 * kv_bf16 + meta_cpu) + " bytes)")) << o;
    EXPECT_TRUE(has(o, "KiB")) << o;
}

TEST(InfoCli, ContextDefaultsToMaxPositionEmbeddings) {
    test::TempDir dir;
    test::tiny_model("Qwen3ForCausalLM", "F32", true).write(dir.path());
    const auto r = run_dsa("info --model " + dir.path().string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(has(r.out, "256 tokens = 16 pages of 16")) << r.out;
    EXPECT_TRUE(has(r.out, "tie embeddings yes")) << r.out;
    EXPECT_TRUE(has(r.out, "qk norm yes")) << r.out;
    EXPECT_TRUE(has(r.out, "F32")) << r.out;
}

TEST(InfoCli, LargeContextUsesGiB) {
    test::TempDir dir;
    test::tiny_model("MistralForCausalLM").write(dir.path());
    // 2 layers * 2 kv heads * 8 dims * 2 (K, V) * 2 bytes = 128 B/token bf16: 2^24 tokens = 2 GiB + metadata.
    const auto r = run_dsa("info -m " + dir.path().string() + " -c 16777216");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(has(r.out, "K/V 2.00 GiB")) << r.out;
    EXPECT_TRUE(has(r.out, "K/V 4.00 GiB")) << r.out;
}

TEST(InfoCli, BadModelPathNamesThePath) {
    const auto r = run_dsa("info -m /nonexistent/dsa-model-dir");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(has(r.err, "dsa: error: ")) << r.err;
    EXPECT_TRUE(has(r.err, "/nonexistent/dsa-model-dir")) << r.err;
    EXPECT_EQ(r.out, "");
}

TEST(InfoCli, CorruptModelIsOneErrorLine) {
    test::TempDir dir;
    test::TinyModel m = test::tiny_model("LlamaForCausalLM");
    m.erase("model.norm.weight");
    m.write(dir.path());
    const auto r = run_dsa("info -m " + dir.path().string());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_TRUE(has(r.err, "missing tensor model.norm.weight")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(InfoCli, RequiresModelFlag) {
    const auto r = run_dsa("info");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(has(r.err, "--model")) << r.err;
}

}  // namespace
}  // namespace dsa
