#include "backend/cuda/linear.h"

#include "backend/cuda/cuda_check.h"
#include "kernels/gemv.h"
#include "util/error.h"

namespace dsa::cuda {

namespace {

void check(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) throw Error("cuBLAS error {} in {}", static_cast<int>(s), what);
}

cudaDataType_t cuda_type(DType t) {
    switch (t) {
        case DType::F32:
            return CUDA_R_32F;
        case DType::F16:
            return CUDA_R_16F;
        case DType::BF16:
            return CUDA_R_16BF;
    }
    return CUDA_R_32F;
}

RowFusion g_row_fusion = RowFusion::LmHead;  // the fastest measured (docs/perf.md)

// y = beta y + W x for one row, no fusions.
GemvArgs plain_row(const void* w, const void* x, DType dtype, float* y, int n, int k, float beta) {
    GemvArgs a;
    a.w = w;
    a.x = x;
    a.y = y;
    a.beta = beta;
    a.n = n;
    a.k = k;
    a.dtype = dtype;
    return a;
}

constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's recommendation for Hopper

}  // namespace

void set_row_fusion(RowFusion mode) {
    g_row_fusion = mode;
}
RowFusion row_fusion() {
    return g_row_fusion;
}

Linear::Linear(cudaStream_t stream) : stream_(stream), workspace_(kWorkspaceBytes, "cuBLAS workspace") {
    check(cublasCreate(&handle_), "cublasCreate");
    check(cublasSetStream(handle_, stream_), "cublasSetStream");
    check(cublasSetWorkspace(handle_, workspace_.get(), workspace_.bytes()), "cublasSetWorkspace");
}

Linear::~Linear() {
    if (handle_) cublasDestroy(handle_);
}

void Linear::operator()(const void* x, const void* w, DType dtype, float* y, int m, int n, int k,
                        float beta) {
    if (m == 0 || n == 0) return;
    if (m == 1 && gemv_supported(k, dtype)) {
        row(plain_row(w, x, dtype, y, n, k, beta));
        return;
    }
    // cuBLAS is column-major: row-major y[m][n] is C = y^T (n x m, ldc n), w[n][k] is a column-major k x n
    // matrix (op T gives n x k), x[m][k] a column-major k x m one: C = op_T(w) * x.
    const float alpha = 1.0f;
    const cudaDataType_t t = cuda_type(dtype);
    check(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, t, k, x, t, k, &beta, y,
                       CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
}

void Linear::row(const GemvArgs& a) {
    const auto it = gemv_variant_.find({a.n, a.k});
    gemv(a, stream_, it == gemv_variant_.end() ? 0 : it->second);
}

void Linear::tune_gemv(const std::vector<const void*>& weights, const void* x, DType dtype, float* scratch_y,
                       int n, int k) {
    if (!gemv_supported(k, dtype) || weights.empty()) return;
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    GemvArgs a = plain_row(nullptr, x, dtype, scratch_y, n, k, 0.0f);
    int best = 0;
    float best_ms = 0.0f;
    for (int round = 0; round < 2; ++round) {  // round 0 warms up (module load, clocks)
        for (int v = 0; v < gemv_variants; ++v) {
            CUDA_CHECK(cudaEventRecord(e0, stream_));
            for (const void* w : weights) {
                a.w = w;
                gemv(a, stream_, v);
            }
            CUDA_CHECK(cudaEventRecord(e1, stream_));
            CUDA_CHECK(cudaEventSynchronize(e1));
            float ms = 0.0f;
            CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
            if (round == 1 && (v == 0 || ms < best_ms)) {
                best = v;
                best_ms = ms;
            }
        }
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    gemv_variant_[{n, k}] = best;
}

}  // namespace dsa::cuda
