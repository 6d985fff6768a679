// --device → backend. "auto" prefers CUDA once a CUDA backend exists and a device is present.
#include "backend/cpu/cpu_backend.h"
#include "engine/backend.h"
#include "util/error.h"

namespace dsa {

std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model,
                                      const BackendOptions& opts) {
    if (device == "cpu" || device == "auto") return std::make_unique<CpuBackend>(model, opts);
    if (device == "cuda") {
        if (!cuda_compiled()) throw Error("--device cuda: this dsa binary was built without CUDA support");
        if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA device found");
        throw Error("--device cuda: the CUDA backend is not available yet");
    }
    throw Error("--device must be cpu, cuda or auto, got '{}'", device);
}

}  // namespace dsa
