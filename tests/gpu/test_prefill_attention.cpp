// Causal flash-attention prefill over the paged cache against a double-precision CPU reference: chunks that
// start after a cached prefix, several sequences of different lengths in one launch, head_dim 64/128 (and
// 16/48), group sizes 1/4/8, page sizes 16/64, bf16 and fp32 outputs.
#include <gtest/gtest.h>

#include <cmath>

#include "gpu_test_util.h"
#include "kernels/prefill_attention.h"
#include "paged_kv_fixture.h"

namespace dsa::test {
namespace {

void run_prefill_case(Rng& rng, int D, int G, int P, DType out_dtype, int variant = 0) {
    const int n_kv_heads = 2, n_heads = n_kv_heads * G;
    // (cached prefix, chunk length) per sequence: a fresh prompt (for the tile variants longer than the 256
    // query rows of the largest CTA), a chunk after a long prefix, a short one.
    const std::vector<std::pair<int, int>> shape = {{0, variant > 0 ? rng.integer(257, 600) : rng.integer(1, 200)},
                                                    {rng.integer(1, 400), rng.integer(60, 150)},
                                                    {rng.integer(0, 40), rng.integer(1, 9)}};
    const int n_seq = static_cast<int>(shape.size());
    std::vector<int> lengths, q_start = {0}, pos_start;
    for (auto [prefix, len] : shape) {
        lengths.push_back(prefix + len);
        pos_start.push_back(prefix);
        q_start.push_back(q_start.back() + len);
    }
    PagedKv kv = make_paged_kv(rng, lengths, n_kv_heads, P, D);
    const int total_q = q_start.back();
    const Typed q = make_typed(rng.normals(static_cast<size_t>(total_q) * n_heads * D, 2.0f), DType::BF16);
    const int max_pages = (*std::max_element(lengths.begin(), lengths.end()) + P - 1) / P;
    std::vector<int32_t> tables(static_cast<size_t>(n_seq) * max_pages, -1);
    int max_q = 0;
    for (int s = 0; s < n_seq; ++s) {
        std::copy(kv.pages[s].begin(), kv.pages[s].end(),
                  tables.begin() + static_cast<ptrdiff_t>(s) * max_pages);
        max_q = std::max(max_q, shape[s].second);
    }
    auto d_k = to_device(kv.k), d_v = to_device(kv.v), d_q = to_device(q.bytes), d_tables = to_device(tables);
    auto d_qs = to_device(std::vector<int32_t>(q_start.begin(), q_start.end()));
    auto d_ps = to_device(std::vector<int32_t>(pos_start.begin(), pos_start.end()));
    const size_t n_out = static_cast<size_t>(total_q) * n_heads * D;
    auto d_out = poisoned(n_out * dtype_size(out_dtype));
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));

    cuda::PrefillAttentionParams p;
    p.q = d_q.as<uint16_t>();
    p.k_pool = d_k.as<uint16_t>();
    p.v_pool = d_v.as<uint16_t>();
    p.block_tables = d_tables.as<int32_t>();
    p.block_table_stride = max_pages;
    p.q_start = d_qs.as<int32_t>();
    p.pos_start = d_ps.as<int32_t>();
    p.out = d_out.get();
    p.out_dtype = out_dtype;
    p.n_seq = n_seq;
    p.n_heads = n_heads;
    p.n_kv_heads = n_kv_heads;
    p.head_dim = D;
    p.page_size = P;
    p.max_q_len = max_q;
    p.scale = scale;
    p.variant = variant;
    cuda::prefill_attention(p, nullptr);
    const auto out = from_device_as_f32(d_out, out_dtype, n_out);

    std::vector<float> ref(n_out);
    for (int s = 0; s < n_seq; ++s)
        for (int i = 0; i < shape[s].second; ++i) {
            std::vector<int> positions(static_cast<size_t>(pos_start[s] + i + 1));
            std::iota(positions.begin(), positions.end(), 0);
            for (int h = 0; h < n_heads; ++h) {
                const size_t r = static_cast<size_t>(q_start[s] + i) * n_heads + h;
                reference_attention(kv, s, h / G, q.values.data() + r * D, positions, scale,
                                    ref.data() + r * D);
            }
        }
    EXPECT_LE(rel_error(out, ref), 1e-2)
        << "D " << D << " G " << G << " P " << P << " out " << dtype_name(out_dtype) << " variant " << variant;
}

TEST(GpuPrefillAttention, MatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int D : {64, 128})
        for (int G : {1, 4, 8})
            for (int P : {16, 64}) run_prefill_case(rng, D, G, P, DType::BF16);
}

// Every tile configuration of head_dim 128 (16 or 32 query rows per warp, 4 or 8 warps, 2 or 3 stages): chunks
// shorter and longer than one CTA's rows, and with the max_q_len spanning several CTAs.
TEST(GpuPrefillAttention, EveryVariantMatchesCpu) {
    DSA_REQUIRE_GPU();
    Rng rng;
    for (int variant = 0; variant < cuda::kPrefillAttentionVariants; ++variant)
        for (int G : {1, 4}) run_prefill_case(rng, 128, G, G == 1 ? 64 : 16, DType::BF16, variant);
}

TEST(GpuPrefillAttention, OutputDtypesAndSmallHeadDims) {
    DSA_REQUIRE_GPU();
    Rng rng;
    run_prefill_case(rng, 128, 4, 16, DType::F32);
    run_prefill_case(rng, 64, 2, 32, DType::F16);
    for (int D : {16, 48, 96}) run_prefill_case(rng, D, 3, 16, DType::F32);
}

}  // namespace
}  // namespace dsa::test
