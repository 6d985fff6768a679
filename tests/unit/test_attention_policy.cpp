// Attention policy presets (configs/*.json), flag overrides and validation errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "attention/policy.h"
#include "tests/unit/error_of.h"
#include "util/error.h"

namespace dsa {
namespace {

const std::vector<std::filesystem::path> kPresets = {std::filesystem::path(DSA_SOURCE_DIR) / "configs"};

// Flag overrides, set one by one (designated initializers would warn about the fields left out).
struct Ov {
    PolicyOverrides o;
    Ov& budget(int v) { return o.budget = v, *this; }
    Ov& page_size(int v) { return o.page_size = v, *this; }
    Ov& dense_layers(int v) { return o.dense_layers = v, *this; }
    Ov& window(int v) { return o.window = v, *this; }
    Ov& top_n(int v) { return o.top_n = v, *this; }
    Ov& gqa(const char* v) { return o.gqa = v, *this; }
    operator const PolicyOverrides&() const { return o; }
};

using test::error_of;

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
    const auto path = std::filesystem::temp_directory_path() / ("dsa_policy_test_" + name + ".json");
    std::ofstream(path) << text;
    return path;
}

TEST(PolicyPresets, EveryPresetLoadsAndValidates) {
    for (const char* name : {"full", "quest", "nsa", "window", "oracle"}) {
        const AttentionPolicy p = load_policy(name, kPresets);
        EXPECT_EQ(policy_kind_name(p.kind), name);
        EXPECT_NO_THROW(validate_policy(p)) << name;
    }
}

TEST(PolicyPresets, NsaPresetFollowsThePaper) {
    const AttentionPolicy p = load_policy("nsa", kPresets);
    EXPECT_EQ(p.page_size, 64);  // NSA's selection block size
    EXPECT_EQ(p.init_blocks, 1);
    EXPECT_EQ(p.local_blocks, 2);
    EXPECT_EQ(p.top_n, 16);
    EXPECT_EQ(p.window, 512);
    EXPECT_EQ(p.gqa, GqaMode::Softmax);
    EXPECT_EQ(p.dense_layers, 2);
    EXPECT_EQ(p.budget_tokens(), 1024);
}

TEST(PolicyPresets, PathsAndUnknownNames) {
    const auto file = write_temp("path", R"({"policy": "quest", "budget": 512, "gqa": "max"})");
    const AttentionPolicy p = load_policy(file.string(), kPresets);
    EXPECT_EQ(p.kind, PolicyKind::Quest);
    EXPECT_EQ(p.budget, 512);
    EXPECT_EQ(p.gqa, GqaMode::Max);
    EXPECT_EQ(p.page_size, 16);
    EXPECT_NE(error_of([] { load_policy("sparse", kPresets); }).find("--attn sparse: no preset sparse.json"),
              std::string::npos);
    EXPECT_NE(error_of([] { load_policy("/nonexistent/x.json", kPresets); }).find("cannot open"),
              std::string::npos);
}

TEST(PolicyPresets, BadFilesAreClearErrors) {
    const auto check = [](const std::string& name, const std::string& text, const std::string& expect) {
        const auto file = write_temp(name, text);
        const std::string err = error_of([&] { read_policy_file(file); });
        EXPECT_NE(err.find(file.string()), std::string::npos) << err;
        EXPECT_NE(err.find(expect), std::string::npos) << err;
    };
    check("notjson", "{policy", "not valid JSON");
    check("nopolicy", R"({"budget": 64})", "missing string key \"policy\"");
    check("unknownpolicy", R"({"policy": "sparse"})", "unknown attention policy");
    check("unknownkey", R"({"policy": "quest", "budgett": 64})",
          "key \"budgett\" is unknown or does not apply");
    check("inapplicable", R"({"policy": "quest", "top_n": 4})", "key \"top_n\" is unknown or does not apply");
    check("badtype", R"({"policy": "quest", "budget": "64"})", "\"budget\" must be an integer");
    check("badgqa", R"({"policy": "quest", "gqa": "mean"})", "unknown GQA reduction");
}

TEST(PolicyOverrides, FlagsReplaceFields) {
    AttentionPolicy q = load_policy("quest", kPresets);
    PolicyOverrides o;
    o.budget = 256;
    o.gqa = "per-head";
    o.dense_layers = 0;
    o.page_size = 32;
    apply_overrides(q, o);
    EXPECT_EQ(q.budget, 256);
    EXPECT_EQ(q.gqa, GqaMode::PerHead);
    EXPECT_EQ(q.dense_layers, 0);
    EXPECT_EQ(q.page_size, 32);
    EXPECT_NO_THROW(validate_policy(q));

    AttentionPolicy n = load_policy("nsa", kPresets);  // --budget sets the block count
    apply_overrides(n, Ov().budget(512));
    EXPECT_EQ(n.top_n, 8);
    EXPECT_EQ(n.budget_tokens(), 512);
    apply_overrides(n, Ov().window(0).top_n(4));
    EXPECT_EQ(n.top_n, 4);
    EXPECT_EQ(n.window, 0);

    AttentionPolicy w = load_policy("window", kPresets);  // --budget = sinks + window
    apply_overrides(w, Ov().budget(256));
    EXPECT_EQ(w.sink_tokens + w.window, 256);
    EXPECT_EQ(w.budget_tokens(), 256);
}

TEST(PolicyOverrides, InapplicableFlags) {
    AttentionPolicy q = load_policy("quest", kPresets);
    EXPECT_EQ(error_of([&] { apply_overrides(q, Ov().top_n(4)); }), "--top-n does not apply to --attn quest");
    AttentionPolicy f = load_policy("full", kPresets);
    EXPECT_EQ(error_of([&] { apply_overrides(f, Ov().budget(64)); }),
              "--budget does not apply to --attn full");
    EXPECT_EQ(error_of([&] { apply_overrides(f, Ov().gqa("sum")); }), "--gqa does not apply to --attn full");
    apply_overrides(f, Ov().budget(64).page_size(32), /*skip_inapplicable=*/true);
    EXPECT_EQ(f.page_size, 32);
    AttentionPolicy n = load_policy("nsa", kPresets);
    EXPECT_NE(error_of([&] { apply_overrides(n, Ov().budget(512).top_n(4)); }).find("give one"),
              std::string::npos);
}

TEST(PolicyValidation, InvalidCombinationsNameTheFlag) {
    const auto override_error = [](const char* preset, const PolicyOverrides& o) {
        return error_of([&] {
            AttentionPolicy p = load_policy(preset, kPresets);
            apply_overrides(p, o);
            validate_policy(p);
        });
    };
    EXPECT_EQ(override_error("quest", Ov().budget(100)),
              "--budget 100: must be a multiple of the page size 16");
    EXPECT_EQ(override_error("quest", Ov().budget(8)), "--budget 8: smaller than one page (16 tokens)");
    EXPECT_EQ(override_error("nsa", Ov().budget(100)),
              "--budget 100: must be a multiple of the page size 64");
    EXPECT_EQ(override_error("oracle", Ov().budget(0)), "--budget 0: smaller than one page (16 tokens)");
    EXPECT_EQ(override_error("quest", Ov().page_size(48)), "--page-size 48: must be 16, 32 or 64");
    EXPECT_EQ(override_error("full", Ov().page_size(8)), "--page-size 8: must be 16, 32 or 64");
    EXPECT_EQ(override_error("quest", Ov().budget(64).page_size(48)), "--page-size 48: must be 16, 32 or 64");
    EXPECT_EQ(override_error("nsa", Ov().window(-1)), "--window -1: must be >= 0");
    EXPECT_EQ(override_error("window", Ov().window(-5)), "--window -5: must be >= 0");
    EXPECT_NE(override_error("window", Ov().window(0)).find("--window 0:"), std::string::npos);
    EXPECT_EQ(override_error("quest", Ov().dense_layers(-1)), "--dense-layers -1: must be >= 0");
    EXPECT_NE(
        override_error("nsa", Ov().top_n(2)).find("--top-n 2: must be >= init_blocks 1 + local_blocks 2"),
        std::string::npos);
    EXPECT_NE(override_error("quest", Ov().gqa("mean")).find("--gqa 'mean': unknown GQA reduction"),
              std::string::npos);
    AttentionPolicy w = load_policy("window", kPresets);
    w.sink_tokens = 16;
    EXPECT_EQ(error_of([&] { apply_overrides(w, Ov().budget(16)); }),
              "--budget 16: must exceed the window policy's 16 sink tokens");

    AttentionPolicy q = load_policy("quest", kPresets);
    q.budget = 64;  // 4 pages: sinks 2 + recents 2 + the current page do not fit
    q.sink_pages = 2;
    q.recent_pages = 2;
    EXPECT_NE(error_of([&] { validate_policy(q); }).find("cannot hold sink_pages 2 + recent_pages 2"),
              std::string::npos);
    q.recent_pages = 1;
    EXPECT_NO_THROW(validate_policy(q));
    EXPECT_NE(error_of([] {
                  parse_policy_kind("dense", "--attn");
              }).find("--attn 'dense': unknown attention policy"),
              std::string::npos);
}

TEST(PolicyDescribe, OneLine) {
    EXPECT_EQ(describe_policy(load_policy("quest", kPresets)),
              "quest P=16 B=2048 gqa=sum dense_layers=2");
    EXPECT_EQ(describe_policy(load_policy("full", kPresets)), "full P=16");
}

}  // namespace
}  // namespace dsa
