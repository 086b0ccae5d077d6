#pragma once
// Termination signals for programs that run a server until told to stop.
//
// Call block_termination_signals() first thing in main (before any thread
// starts, so every thread inherits the mask), then wait_for_signal() on the
// main thread once the server runs.
#include <csignal>
#include <initializer_list>

namespace atl::runtime {

/// Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR2 and SIGQUIT in the calling thread
/// (and the threads it starts later) and ignores SIGPIPE: a peer that goes
/// away must cost an EPIPE, not the process.
void block_termination_signals();
/// Waits for one of the blocked signals and returns its number.
int wait_for_signal();

}  // namespace atl::runtime
