#pragma once
// Programmatic dependent launch (Hopper): every kernel of dsa starts with griddepcontrol.wait (wait for the
// previous kernel in the stream to finish and flush) and then griddepcontrol.launch_dependents, and is
// launched with the programmatic-serialization attribute, so the next kernel's launch and block scheduling
// overlap the current one's tail instead of following a full drain. The decode step is ~290 dependent
// kernels, most of them a few microseconds long, so the gaps are a visible part of it.
namespace dsa::cuda {

void set_programmatic_launch(bool on);  // default off: measured 2% slower on the decode step (docs/perf.md)
bool programmatic_launch();

}  // namespace dsa::cuda
