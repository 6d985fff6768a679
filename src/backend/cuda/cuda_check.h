#pragma once
// One macro for every CUDA runtime call and kernel launch: a failure throws dsa::Error naming the call,
// the file:line and CUDA's error string, so nothing fails silently and the CLI prints one clear line.
#include <cuda_runtime_api.h>

#include <string>

namespace dsa::cuda {

// Throws dsa::Error(message). For .cu files, which cannot include util/error.h: fmt's headers do not
// compile under nvcc's C++20 host pass.
[[noreturn]] void throw_error(const std::string& message);

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);

}  // namespace dsa::cuda

#define CUDA_CHECK(call)                                                             \
    do {                                                                             \
        const cudaError_t dsa_cuda_err_ = (call);                                    \
        if (dsa_cuda_err_ != cudaSuccess)                                            \
            ::dsa::cuda::throw_cuda_error(dsa_cuda_err_, #call, __FILE__, __LINE__); \
    } while (0)

// After a <<<...>>> launch: catches bad launch configurations (and, in debug runs, earlier faults).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
