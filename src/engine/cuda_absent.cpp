// Device discovery for builds without the CUDA backend.
#include "engine/backend.h"

#ifndef DSA_HAS_CUDA
namespace dsa {

bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }

}  // namespace dsa
#endif
