#include "kernels/launch.h"

namespace dsa::cuda {

namespace {
bool g_programmatic = false;  // measured 2% slower on the decode step (docs/perf.md)
}  // namespace

void set_programmatic_launch(bool on) {
    g_programmatic = on;
}
bool programmatic_launch() {
    return g_programmatic;
}

}  // namespace dsa::cuda
