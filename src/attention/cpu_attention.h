#pragma once
// CPU reference attention of one GQA group over cached tokens. Full attention passes every page of the
// sequence (attend_pages); sparse policies pass the token spans they selected (attend_spans). Both walk the
// tokens page by page with the same running-max softmax, so a span list covering everything gives the same
// bits as the page list. Prefill runs a block of consecutive query tokens over the sequence's pages at once
// (causal), so each page is read once per block, not per token.
#include <span>

#include "attention/selection.h"
#include "kv/paged_cache.h"

namespace dsa {

struct PageListAttention {
    int layer = 0;
    int kv_head = 0;
    std::span<const int> pages;  // page ids in token order; every page is full but the last
    int last_page_tokens = 0;    // valid tokens in the last page, 1..P
    float scale = 1.0f;          // softmax scale, 1/sqrt(head_dim)
};

// out[g] = softmax_j(scale * q[g]·k_j) · v_j over the tokens j of the listed pages, for the G query heads
// of the group (query head h uses kv head h / G). One softmax over all listed tokens, computed page by
// page with a running max (exact up to fp32 rounding). q, out: [G][head_dim].
void attend_pages(const PagedKvCache& cache, const PageListAttention& a, const float* q, int G, float* out);

struct CausalBlock {
    int layer = 0;
    int kv_head = 0;
    std::span<const int> pages;  // the sequence's block table, covering every position the block attends
    int first_pos = 0;           // position of the block's first query token
    int n_queries = 0;           // consecutive query tokens; token t attends positions 0 .. first_pos + t
    size_t stride = 0;           // floats from one token's G query heads to the next token's, in q and out
    float scale = 1.0f;
};

// Causal attention of a block of query tokens, each as attend_pages over the positions it may see.
// q, out: token t's G heads at [t * stride][G][head_dim].
void attend_causal(const PagedKvCache& cache, const CausalBlock& b, const float* q, int G, float* out);

struct SpanAttention {
    int layer = 0;
    int kv_head = 0;
    std::span<const int> block_table;  // the sequence's page ids in token order
    std::span<const TokenSpan> spans;  // ascending, disjoint token ranges (a HeadSelection's)
    float scale = 1.0f;
};

// As attend_pages, over the tokens of `spans` only: each span's part of a page is one step of the running
// softmax, so the single span [0, n) takes exactly attend_pages's steps. q, out: [G][head_dim].
void attend_spans(const PagedKvCache& cache, const SpanAttention& a, const float* q, int G, float* out);

// Attention recall of one query head: the share of its full-attention probability (softmax over all
// n_tokens cached tokens, in double) that falls on the tokens of `spans`. q: [head_dim].
double attention_recall(const PagedKvCache& cache, int layer, int kv_head, std::span<const int> block_table,
                        int n_tokens, std::span<const TokenSpan> spans, float scale, const float* q);

}  // namespace dsa
