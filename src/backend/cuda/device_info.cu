// CUDA device discovery, compiled only when the CUDA backend is built. Declared in engine/backend.h, which
// this file does not include: its inline dsa::Error formatting (fmt's compile-time format strings) does not
// build under nvcc's C++20 host pass.
#include <cuda_runtime_api.h>

namespace dsa {

bool cuda_compiled();
int cuda_device_count();

bool cuda_compiled() {
    return true;
}

// A missing driver or no device is "0 devices", not an error: the caller decides what that means.
int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return 0;
    }
    return n;
}

}  // namespace dsa
