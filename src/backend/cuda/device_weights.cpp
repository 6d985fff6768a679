#include "backend/cuda/device_weights.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "model/rope.h"

namespace dsa::cuda {

namespace {

// Copies `n` elements of `src` (any dtype) to the device as `dst_type`: a straight copy when the dtypes
// match, else converted on the host through a bounded staging buffer (1M elements at a time).
void upload_converted(const TensorView& src, DType dst_type, void* dst) {
    const size_t n = static_cast<size_t>(src.numel());
    if (src.dtype == dst_type) {
        CUDA_CHECK(cudaMemcpy(dst, src.data, src.nbytes, cudaMemcpyHostToDevice));
        return;
    }
    constexpr size_t kBlock = size_t{1} << 20;
    std::vector<float> f(std::min(n, kBlock));
    std::vector<std::byte> out(f.size() * dtype_size(dst_type));
    for (size_t first = 0; first < n; first += kBlock) {
        const size_t len = std::min(kBlock, n - first);
        convert_to_f32(src.data, src.dtype, first, len, f.data());
        for (size_t i = 0; i < len; ++i) {
            switch (dst_type) {
                case DType::F32:
                    std::memcpy(out.data() + 4 * i, &f[i], 4);
                    break;
                case DType::F16: {
                    const uint16_t h = f32_to_f16(f[i]);
                    std::memcpy(out.data() + 2 * i, &h, 2);
                    break;
                }
                case DType::BF16: {
                    const uint16_t h = f32_to_bf16(f[i]);
                    std::memcpy(out.data() + 2 * i, &h, 2);
                    break;
                }
            }
        }
        CUDA_CHECK(cudaMemcpy(static_cast<std::byte*>(dst) + first * dtype_size(dst_type), out.data(),
                              len * dtype_size(dst_type), cudaMemcpyHostToDevice));
    }
}

}  // namespace

const void* DeviceWeights::upload(std::initializer_list<const TensorView*> parts, DType type,
                                  const std::string& what) {
    size_t n = 0;
    for (const TensorView* t : parts) n += static_cast<size_t>(t->numel());
    buffers_.emplace_back(n * dtype_size(type), what);
    bytes_ += n * dtype_size(type);
    auto* dst = static_cast<std::byte*>(buffers_.back().get());
    for (const TensorView* t : parts) {
        upload_converted(*t, type, dst);
        dst += static_cast<size_t>(t->numel()) * dtype_size(type);
    }
    return buffers_.back().get();
}

DeviceWeights::DeviceWeights(const Model& model) : dtype_(model.weight_dtype()) {
    const ModelConfig& c = model.config;
    const ModelWeights& w = model.weights;
    layers_.resize(static_cast<size_t>(c.n_layers));
    for (int i = 0; i < c.n_layers; ++i) {
        const LayerWeights& lw = w.layers[static_cast<size_t>(i)];
        DeviceLayer& d = layers_[static_cast<size_t>(i)];
        const std::string name = "layer " + std::to_string(i) + " ";
        d.attn_norm = upload_f32({&lw.attn_norm}, name + "attention norm");
        d.wqkv = upload({&lw.wq, &lw.wk, &lw.wv}, dtype_, name + "q/k/v projection");
        if (c.attention_bias) d.bqkv = upload_f32({&lw.bq, &lw.bk, &lw.bv}, name + "q/k/v bias");
        if (c.qk_norm) {
            d.q_norm = upload_f32({&lw.q_norm}, name + "q norm");
            d.k_norm = upload_f32({&lw.k_norm}, name + "k norm");
        }
        d.wo = upload({&lw.wo}, dtype_, name + "output projection");
        d.mlp_norm = upload_f32({&lw.mlp_norm}, name + "MLP norm");
        d.w_gate_up = upload({&lw.w_gate, &lw.w_up}, dtype_, name + "gate/up projection");
        d.w_down = upload({&lw.w_down}, dtype_, name + "down projection");
    }
    embed_ = upload({&w.embed}, dtype_, "token embedding");
    lm_head_ = w.lm_head.data == w.embed.data ? embed_ : upload({&w.lm_head}, dtype_, "LM head");
    final_norm_ = upload_f32({&w.final_norm}, "final norm");

    const RopeTable rope = make_rope_table(c);
    TensorView inv;
    inv.dtype = DType::F32;
    inv.shape = {static_cast<int64_t>(rope.inv_freq.size())};
    inv.data = rope.inv_freq.data();
    inv.nbytes = rope.inv_freq.size() * sizeof(float);
    inv_freq_ = upload_f32({&inv}, "RoPE frequencies");
    rope_scaling_ = rope.attention_scaling;
}

}  // namespace dsa::cuda
