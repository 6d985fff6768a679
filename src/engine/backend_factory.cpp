// --device → backend. "auto" takes the CUDA backend when it is compiled in and a device is present;
// otherwise the CPU reference.
#include "backend/cpu/cpu_backend.h"
#include "engine/backend.h"
#include "util/error.h"
#ifdef DSA_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace dsa {

std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model,
                                      const BackendOptions& opts) {
    if (device == "cpu") return std::make_unique<CpuBackend>(model, opts);
    if (device == "auto") {
        if (cuda_device_count() == 0) return std::make_unique<CpuBackend>(model, opts);
    } else if (device != "cuda") {
        throw Error("--device must be cpu, cuda or auto, got '{}'", device);
    }
    if (!cuda_compiled()) throw Error("--device cuda: this dsa binary was built without CUDA support");
    if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device found");
#ifdef DSA_HAS_CUDA
    return std::make_unique<CudaBackend>(model, opts);
#else
    throw Error("--device cuda: this dsa binary was built without CUDA support");
#endif
}

}  // namespace dsa
