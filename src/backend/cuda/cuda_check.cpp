#include "backend/cuda/cuda_check.h"

#include "util/error.h"

namespace dsa::cuda {

void throw_error(const std::string& message) {
    throw Error(message);
}

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
    throw Error("CUDA error {} ({}) at {}:{}: {}", cudaGetErrorName(err), cudaGetErrorString(err), file, line,
                call);
}

}  // namespace dsa::cuda
