#pragma once
// Programmatic dependent launch (Hopper): every kernel of dsa starts with griddepcontrol.wait (wait for the
// previous kernel in the stream to finish and flush) and then griddepcontrol.launch_dependents. A kernel
// launched with the programmatic-serialization attribute may then be scheduled while the previous one still
// runs, instead of after a full drain. The decode step is ~290 dependent kernels, most of them a few
// microseconds long, so the gaps are a visible part of it.
// The kernels that read memory before the wait issue those loads first, so the drain and launch gap before
// them is spent reading: the decode GEMVs their weights, full decode attention (block-table lists) its page
// ids and the K/V of every page but the current one (sparse lists: only the queries), the Quest and NSA
// score kernels their page metadata, the selection its block table.
// Those launches are the "early" ones (launch_kernel_as).
// The rule that makes a read before the wait safe: every dsa kernel triggers its dependents only after its
// own wait (pdl_begin), so when a grid runs, the kernel two back in the stream has finished and flushed.
// A read before the wait may therefore touch anything but the previous kernel's output: host copies made
// before the step (block tables, lengths), weights, and cache pages other than a sequence's current one
// (the only page a decode step's projection writes).
//   Gemv: only the early launches carry the attribute (the default; named for the first of them).
//   All:  every launch does (5.23 ms; but the sparse attention step at 128K: nsa 1.92 against 1.74 ms).
//   Off:  none (5.27 ms).
namespace dsa::cuda {

enum class ProgrammaticLaunch { Off, Gemv, All };

void set_programmatic_launch(ProgrammaticLaunch mode);  // default: Gemv (docs/perf.md)
ProgrammaticLaunch programmatic_launch();

}  // namespace dsa::cuda
