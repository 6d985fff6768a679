#include "kernels/launch.h"

namespace dsa::cuda {

namespace {
ProgrammaticLaunch g_mode = ProgrammaticLaunch::Gemv;  // docs/perf.md: the decode step under each mode
}  // namespace

void set_programmatic_launch(ProgrammaticLaunch mode) {
    g_mode = mode;
}
ProgrammaticLaunch programmatic_launch() {
    return g_mode;
}

}  // namespace dsa::cuda
