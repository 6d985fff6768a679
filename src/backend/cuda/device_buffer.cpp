#include "backend/cuda/device_buffer.h"

#include <cuda_runtime_api.h>

#include <utility>

#include "backend/cuda/cuda_check.h"
#include "util/error.h"

namespace dsa::cuda {

namespace {
double mib(size_t b) {
    return static_cast<double>(b) / (1024.0 * 1024.0);
}
}  // namespace

DeviceMemory device_memory() {
    DeviceMemory m;
    CUDA_CHECK(cudaMemGetInfo(&m.free, &m.total));
    return m;
}

DeviceBuffer::DeviceBuffer(size_t bytes, const std::string& what) : bytes_(bytes) {
    if (bytes == 0) return;
    const cudaError_t err = cudaMalloc(&ptr_, bytes);
    if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // clear it; the error below says everything
        const DeviceMemory m = device_memory();
        throw Error("out of device memory: {} needs {:.1f} MiB, {:.1f} MiB free of {:.1f} MiB", what,
                    mib(bytes), mib(m.free), mib(m.total));
    }
    CUDA_CHECK(err);
}

DeviceBuffer::~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
        if (ptr_) cudaFree(ptr_);
        ptr_ = std::exchange(o.ptr_, nullptr);
        bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
}

PinnedBuffer::PinnedBuffer(size_t bytes) {
    CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
}

PinnedBuffer::~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
        if (ptr_) cudaFreeHost(ptr_);
        ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
}

}  // namespace dsa::cuda
