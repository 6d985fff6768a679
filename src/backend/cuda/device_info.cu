// CUDA device discovery, compiled only when the CUDA backend is built.
#include <cuda_runtime.h>

#include "engine/backend.h"

namespace dsa {

bool cuda_compiled() { return true; }

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
