#pragma once
// Device and host halves of launch.h.
#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_check.h"
#include "kernels/launch.h"

namespace dsa::cuda {

// First statement of every kernel: both are no-ops when the kernel was launched without the attribute.
__device__ __forceinline__ void pdl_begin() {
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// early: the launch carries the attribute under ProgrammaticLaunch::Gemv too (kernels that read nothing
// the previous kernel writes before their pdl_begin()).
template <typename... KernelArgs, typename... Args>
void launch_kernel_as(bool early, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args&&... args) {
    const ProgrammaticLaunch mode = programmatic_launch();
    const bool attribute = mode == ProgrammaticLaunch::All || (early && mode == ProgrammaticLaunch::Gemv);
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = attribute ? &attr : nullptr;
    cfg.numAttrs = attribute ? 1 : 0;
    CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

template <typename... KernelArgs, typename... Args>
void launch_kernel(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args&&... args) {
    launch_kernel_as(false, kernel, grid, block, smem, stream, std::forward<Args>(args)...);
}

}  // namespace dsa::cuda
