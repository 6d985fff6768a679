// The generation loop against a scripted fake backend: the logits after n cached tokens put all their
// mass on script(n), so with greedy sampling every generated token and every forward() call is known
// in advance and can be checked exactly.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "util/error.h"

namespace dsa {
namespace {

constexpr int kVocab = 16;
constexpr int kEos = 1;

struct Call {
    int start = 0;            // seq.n_tokens before the call
    std::vector<int> tokens;  // the chunk
    LogitsMode mode = LogitsMode::All;
};

class ScriptedBackend : public Backend {
  public:
    // script(n): the token whose logit is highest once n tokens are cached.
    ScriptedBackend(int capacity, std::function<int(int)> script)
        : capacity_(capacity), script_(std::move(script)) {
        model_.config.vocab_size = kVocab;
    }

    std::string name() const override { return "scripted"; }
    const Model& model() const override { return model_; }
    int context_capacity() const override { return capacity_; }

    void forward(Sequence& seq, std::span<const int> tokens, LogitsMode mode,
                 std::span<float> logits) override {
        if (seq.n_tokens + static_cast<int>(tokens.size()) > capacity_)
            throw Error("scripted backend: cache full");
        if (throw_at_call >= 0 && static_cast<int>(calls.size()) == throw_at_call) {
            throw Error("scripted backend: failure");
        }
        calls.push_back({seq.n_tokens, {tokens.begin(), tokens.end()}, mode});
        if (events) events->push_back("forward " + std::to_string(tokens.size()));
        seq.n_tokens += static_cast<int>(tokens.size());
        EXPECT_EQ(logits.size(), static_cast<size_t>(kVocab));
        for (float& l : logits) l = -1.0f;  // [vocab]
        logits[static_cast<size_t>(script_(seq.n_tokens))] = 5.0f;
        // A full-attention backend attends every cached token.
        stats_.attended_tokens = seq.n_tokens;
    }
    void release(Sequence& seq) override {
        ++releases;
        seq = Sequence{};
    }
    ForwardStats last_stats() const override { return stats_; }

    std::vector<Call> calls;
    int releases = 0;
    int throw_at_call = -1;
    std::vector<std::string>* events = nullptr;

  private:
    Model model_;
    int capacity_;
    std::function<int(int)> script_;
    ForwardStats stats_;
};

Sampler greedy() {
    SamplerParams p;
    p.temperature = 0.0f;
    return Sampler(p);
}

std::vector<int> iota_prompt(int n) {
    std::vector<int> p(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) p[static_cast<size_t>(i)] = 2 + i % 10;
    return p;
}

// Never EOS: after n cached tokens the next token is 2 + n % 13 (ids 2..14).
int no_eos(int n) {
    return 2 + n % 13;
}

GenerateParams params(int n_predict, int batch) {
    GenerateParams gp;
    gp.n_predict = n_predict;
    gp.batch = batch;
    gp.eos_ids = {kEos};
    gp.show_progress = false;
    return gp;
}

TEST(Generator, PrefillIsChunkedIntoBatchSizedPiecesThenSingleTokenDecode) {
    ScriptedBackend be(100, no_eos);
    Sampler s = greedy();
    const auto prompt = iota_prompt(10);
    const GenerateResult r = generate(be, s, prompt, params(3, 4), nullptr);

    ASSERT_EQ(be.calls.size(), 5u);  // 3 prefill chunks (4+4+2) + 2 decode runs for 3 tokens
    EXPECT_EQ(be.calls[0].tokens, std::vector<int>(prompt.begin(), prompt.begin() + 4));
    EXPECT_EQ(be.calls[1].tokens, std::vector<int>(prompt.begin() + 4, prompt.begin() + 8));
    EXPECT_EQ(be.calls[2].tokens, std::vector<int>(prompt.begin() + 8, prompt.end()));
    EXPECT_EQ(be.calls[0].start, 0);
    EXPECT_EQ(be.calls[1].start, 4);
    EXPECT_EQ(be.calls[2].start, 8);
    for (const Call& c : be.calls) EXPECT_EQ(c.mode, LogitsMode::Last);
    // Decode feeds back exactly the token just sampled, one at a time.
    EXPECT_EQ(be.calls[3].tokens, std::vector<int>{no_eos(10)});
    EXPECT_EQ(be.calls[3].start, 10);
    EXPECT_EQ(be.calls[4].tokens, std::vector<int>{no_eos(11)});
    EXPECT_EQ(r.tokens, (std::vector<int>{no_eos(10), no_eos(11), no_eos(12)}));
    EXPECT_EQ(r.timings.prompt_tokens, 10);
    EXPECT_EQ(r.timings.prompt_chunks, 3);
    EXPECT_EQ(r.timings.eval_runs, 2);
    EXPECT_EQ(r.timings.sample_runs, 3);
    EXPECT_EQ(be.releases, 1);
}

TEST(Generator, PromptOfExactlyOneBatchIsOneChunk) {
    ScriptedBackend be(100, no_eos);
    Sampler s = greedy();
    generate(be, s, iota_prompt(8), params(1, 8), nullptr);
    ASSERT_EQ(be.calls.size(), 1u);
    EXPECT_EQ(be.calls[0].tokens.size(), 8u);
}

TEST(Generator, StopsAtEosWithoutEmittingIt) {
    // Tokens 7, 8, then EOS once 12 tokens are cached (10 prompt + 2 generated).
    ScriptedBackend be(100, [](int n) { return n == 10 ? 7 : n == 11 ? 8 : n == 12 ? kEos : 9; });
    Sampler s = greedy();
    std::vector<int> streamed;
    const GenerateResult r =
        generate(be, s, iota_prompt(10), params(50, 512), [&](int id) { streamed.push_back(id); });
    EXPECT_EQ(r.stop, StopReason::Eos);
    EXPECT_EQ(r.tokens, (std::vector<int>{7, 8}));
    EXPECT_EQ(streamed, r.tokens);
    EXPECT_EQ(r.timings.eval_runs, 2);
    EXPECT_EQ(r.timings.sample_runs, 3);
}

TEST(Generator, StopsAtAnyOfSeveralEosIds) {
    ScriptedBackend be(100, [](int n) { return n == 11 ? 13 : 6; });
    Sampler s = greedy();
    GenerateParams gp = params(50, 512);
    gp.eos_ids = {kEos, 13};
    const GenerateResult r = generate(be, s, iota_prompt(10), gp, nullptr);
    EXPECT_EQ(r.stop, StopReason::Eos);
    EXPECT_EQ(r.tokens, std::vector<int>{6});
}

TEST(Generator, StopsAtNPredict) {
    ScriptedBackend be(100, no_eos);
    Sampler s = greedy();
    const GenerateResult r = generate(be, s, iota_prompt(5), params(7, 512), nullptr);
    EXPECT_EQ(r.stop, StopReason::NPredict);
    EXPECT_EQ(r.tokens.size(), 7u);
    EXPECT_EQ(r.timings.eval_runs, 6);  // the last token is sampled but never run
}

TEST(Generator, NPredictZeroOnlyPrefills) {
    ScriptedBackend be(100, no_eos);
    Sampler s = greedy();
    const GenerateResult r = generate(be, s, iota_prompt(5), params(0, 512), nullptr);
    EXPECT_TRUE(r.tokens.empty());
    EXPECT_EQ(be.calls.size(), 1u);
    EXPECT_EQ(r.timings.sample_runs, 0);
}

TEST(Generator, StopsWhenTheContextIsFull) {
    // Capacity 8, prompt 6: two decode runs fill it (7, 8 cached); the third token is sampled from the
    // logits of position 7 and emitted, but cannot be run.
    ScriptedBackend be(8, no_eos);
    Sampler s = greedy();
    const GenerateResult r = generate(be, s, iota_prompt(6), params(-1, 512), nullptr);
    EXPECT_EQ(r.stop, StopReason::ContextFull);
    EXPECT_EQ(r.tokens, (std::vector<int>{no_eos(6), no_eos(7), no_eos(8)}));
    EXPECT_EQ(r.timings.eval_runs, 2);
}

TEST(Generator, PromptFillingTheContextExactlyStillGivesOneToken) {
    ScriptedBackend be(6, no_eos);
    Sampler s = greedy();
    const GenerateResult r = generate(be, s, iota_prompt(6), params(10, 4), nullptr);
    EXPECT_EQ(r.stop, StopReason::ContextFull);
    EXPECT_EQ(r.tokens, std::vector<int>{no_eos(6)});
}

TEST(Generator, PromptLongerThanTheContextIsAnError) {
    ScriptedBackend be(6, no_eos);
    Sampler s = greedy();
    try {
        generate(be, s, iota_prompt(7), params(10, 4), nullptr);
        FAIL() << "expected dsa::Error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("prompt has 7 tokens but the context holds 6"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_TRUE(be.calls.empty());
}

TEST(Generator, EmptyPromptIsAnError) {
    ScriptedBackend be(6, no_eos);
    Sampler s = greedy();
    EXPECT_THROW(generate(be, s, std::vector<int>{}, params(10, 4), nullptr), Error);
}

TEST(Generator, SequenceIsReleasedWhenForwardThrows) {
    ScriptedBackend be(100, no_eos);
    be.throw_at_call = 2;  // the first decode run after a 2-chunk prefill
    Sampler s = greedy();
    EXPECT_THROW(generate(be, s, iota_prompt(8), params(5, 4), nullptr), Error);
    EXPECT_EQ(be.releases, 1);
}

TEST(Generator, EachTokenIsStreamedBeforeTheNextForward) {
    ScriptedBackend be(100, no_eos);
    std::vector<std::string> events;
    be.events = &events;
    Sampler s = greedy();
    generate(be, s, iota_prompt(3), params(3, 512),
             [&](int id) { events.push_back("token " + std::to_string(id)); });
    const std::vector<std::string> want = {"forward 3", "token " + std::to_string(no_eos(3)),
                                           "forward 1", "token " + std::to_string(no_eos(4)),
                                           "forward 1", "token " + std::to_string(no_eos(5))};
    EXPECT_EQ(events, want);
}

TEST(Generator, AttendedTokensAreAveragedOverDecodeRuns) {
    // A full-attention fake attends n_tokens: decode runs at 5, 6, 7 cached tokens -> mean 6.
    ScriptedBackend be(100, no_eos);
    Sampler s = greedy();
    const GenerateResult r = generate(be, s, iota_prompt(4), params(4, 512), nullptr);
    ASSERT_EQ(r.timings.eval_runs, 3);
    EXPECT_DOUBLE_EQ(r.timings.attended_mean(), 6.0);
}

TEST(Generator, ProgressIsPrintedPerChunkOnlyForPromptsLongerThanTwoChunks) {
    {
        ScriptedBackend be(100, no_eos);
        Sampler s = greedy();
        GenerateParams gp = params(1, 4);
        gp.show_progress = true;
        testing::internal::CaptureStderr();
        generate(be, s, iota_prompt(10), gp, nullptr);
        EXPECT_EQ(testing::internal::GetCapturedStderr(),
                  "dsa: prefill 4/10 tokens\ndsa: prefill 8/10 tokens\ndsa: prefill 10/10 tokens\n");
    }
    {
        ScriptedBackend be(100, no_eos);
        Sampler s = greedy();
        GenerateParams gp = params(1, 4);
        gp.show_progress = true;
        testing::internal::CaptureStderr();
        generate(be, s, iota_prompt(8), gp, nullptr);
        EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    }
}

TEST(Generator, CollectEosIdsMergesConfigAndTokenizer) {
    EXPECT_EQ(collect_eos_ids({128001, 128009}, 128009), (std::vector<int>{128001, 128009}));
    EXPECT_EQ(collect_eos_ids({2}, -1), std::vector<int>{2});
    EXPECT_EQ(collect_eos_ids({}, 1), std::vector<int>{1});
}

TEST(Generator, TimingLinesFollowLlamaCpp) {
    GenerateTimings t;
    t.load_ms = 12.5;
    t.prompt_ms = 100.0;
    t.prompt_tokens = 50;
    t.eval_ms = 30.0;
    t.eval_runs = 15;
    t.wall_ms = 140.0;
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    print_timings(f, t);
    std::rewind(f);
    std::string text;
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) text += buf;
    std::fclose(f);
    EXPECT_NE(text.find("dsa:        load time =      12.50 ms\n"), std::string::npos) << text;
    EXPECT_NE(
        text.find("dsa: prompt eval time =     100.00 ms /    50 tokens (    2.00 ms per token,   500.00 "
                  "tokens per second)\n"),
        std::string::npos)
        << text;
    EXPECT_NE(
        text.find(
            "dsa:        eval time =      30.00 ms /    15 runs   (    2.00 ms per token,   500.00 tokens "
            "per second)\n"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("dsa:       total time =     152.50 ms /    65 tokens\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace dsa
