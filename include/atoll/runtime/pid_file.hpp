#pragma once
// The master's pid file, and a lock that proves it is current.
//
// A pid file alone can lie: after a crash or a reboot its pid may belong to
// an unrelated process, and a command that signals it would kill that
// process. So the master holds a POSIX write lock on its pid file for its
// whole life (taken before the file is renamed into place, released by the
// kernel when the master dies, not inherited by forked workers). A command
// signals a pid only if that pid is the one holding the lock.
#include <sys/types.h>

#include <string>

namespace atl::runtime {

/// Writes `getpid()` to `path` (atomically, via PATH.tmp) and locks it.
/// Returns the descriptor that holds the lock: keep it open for the life of
/// the process (it is close-on-exec, so an upgrade's new binary takes its
/// own). Throws std::runtime_error naming the other process if a live one
/// holds the lock, unless that process is `may_hold` (an upgrading parent).
int hold_pid_file(const std::string& path, pid_t may_hold = 0);

/// The pid written in `path`, or 0 (no file, no number). The master asks
/// this of its own file (a process never sees its own lock as held).
pid_t pid_in_file(const std::string& path);

/// The pid of the master that holds `path`'s lock, or 0 with `why` saying
/// what is wrong: no file, unreadable, or a stale pid that nobody holds.
pid_t locked_pid(const std::string& path, std::string& why);

}  // namespace atl::runtime
