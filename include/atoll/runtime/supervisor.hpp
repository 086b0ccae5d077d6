#pragma once
// Supervisor: a master process that runs N worker processes and keeps them
// running, as an OTP supervisor keeps its children.
//
// The master is single-threaded (so fork() is safe), holds every listening
// socket, and hands each worker its set. A worker that dies is logged with
// its signal and started again at once; its listening sockets stay open in
// the master, so clients queued in their backlog wait for the new worker
// instead of being refused. More than max_restarts restarts within
// restart_window_ms and the master gives up loudly (exit code 3).
//
// Signals to the master:
//   SIGTERM, SIGINT  drain: workers get SIGTERM, finish in-flight work and exit
//   SIGHUP           reload: reload() re-reads settings, a new generation of
//                    workers starts, and the old one drains once it is ready
//   SIGUSR2          upgrade: exec the binary again (possibly a new one) with
//                    the listening sockets inherited; the new master stops the
//                    old one once its workers are ready; if it fails to start,
//                    the old one keeps serving
//
// With NOTIFY_SOCKET set (systemd), the master sends READY=1, RELOADING=1,
// STOPPING=1, MAINPID= and WATCHDOG=1 at half of WATCHDOG_USEC.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace atl::runtime {

struct SupervisorOptions {
  /// Worker processes to keep running.
  unsigned workers = 2;
  /// Restart intensity (as in OTP): more than max_restarts restarts within
  /// restart_window_ms means something is wrong that restarting will not fix.
  /// Default 5 in 10 s: a bad deploy crash-looping stops within seconds.
  int max_restarts = 5;
  std::int64_t restart_window_ms = 10'000;
  /// After SIGTERM, a worker that has not exited in this long gets SIGKILL.
  /// Its own drain deadline should be shorter.
  std::int64_t stop_timeout_ms = 15'000;
  /// Runs in the child process: serve as worker `index` of generation
  /// `generation`; write one byte to `ready_fd` once accepting; return the
  /// exit code when told to stop (SIGTERM). It starts with SIGTERM, SIGINT,
  /// SIGHUP, SIGUSR2 and SIGQUIT blocked: wait for them with
  /// runtime::wait_for_signal(), so one sent early waits instead of killing.
  std::function<int(unsigned index, unsigned generation, int ready_fd)> run_worker;
  /// Called in the master on SIGHUP before new workers start; return false to
  /// keep the current settings (the error is the callee's to log).
  std::function<bool()> reload;
  /// Descriptors the exec'd binary inherits on upgrade (listening sockets),
  /// passed as ATOLL_INHERIT_FDS=3,4,5.
  std::vector<int> inherited_fds;
  /// argv for the upgrade exec (argv[0] is the binary's path).
  std::vector<std::string> argv;
  /// Where the master writes its pid (for `atoll reload` / `atoll upgrade`),
  /// locked for its life (runtime/pid_file.hpp); removed when it stops.
  std::string pid_file;
  /// The descriptor holding pid_file's lock if the caller took it already
  /// (before printing that it is ready); -1: supervise() takes it.
  int pid_fd = -1;
  /// A descriptor the master also waits on (the host's deploy doorbell), and
  /// what it does when the descriptor is readable; -1 for none.
  int wake_fd = -1;
  std::function<void()> on_wake;
};

/// Runs the master until it is told to stop; returns the exit code: 0 after
/// a drain in which every worker exited cleanly, 3 when restart intensity was
/// exceeded, 4 when a drain followed a worker that crashed, failed or ended
/// badly while stopping (killed after stop_timeout_ms, or a sanitizer's
/// report in a sanitizer build): the death is logged and not lost.
int supervise(SupervisorOptions& options);

/// Blocks the signals supervise() answers, so one that arrives before it
/// runs (while the master opens its listeners and prints its banner) waits
/// for it instead of killing the process. supervise() blocks them itself.
void block_master_signals();

/// Descriptors inherited from an upgrading master (ATOLL_INHERIT_FDS), in
/// the order that master listed them; empty if none.
std::vector<int> upgrade_listeners();
/// Descriptors passed by systemd socket activation (LISTEN_FDS, for this
/// pid, from fd 3); empty if none. Clears the variables, as sd_listen_fds does.
std::vector<int> systemd_listeners();

/// Sends a state line to systemd if NOTIFY_SOCKET is set; a no-op otherwise.
void sd_notify_state(const std::string& state);

}  // namespace atl::runtime
