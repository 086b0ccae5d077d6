#include <atoll/runtime/supervisor.hpp>

#include <atoll/runtime/clock.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/pid_file.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

#if defined(__SANITIZE_ADDRESS__)
#define ATOLL_HAS_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATOLL_HAS_LSAN 1
#endif
#endif
#ifdef ATOLL_HAS_LSAN
#include <sanitizer/lsan_interface.h>
#endif
#ifdef ATOLL_COVERAGE
extern "C" int __llvm_profile_write_file(void);
#endif

namespace atl::runtime {

namespace {

struct Worker {
  pid_t pid = 0;
  unsigned index = 0;
  unsigned generation = 0;
  int ready_fd = -1;  // the master's read end
  bool ready = false;
  bool stopping = false;
  std::int64_t stop_sent_ms = 0;
};

// The signals the master answers (through its signalfd).
sigset_t master_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR2, SIGQUIT}) sigaddset(&set, s);
  return set;
}

// A worker ends with _Exit: it is a fork of the master, and exit() would run
// the master's atexit handlers and static destructors a second time. _Exit
// also skips what sanitizer and coverage builds do at exit, so do that here:
// LeakSanitizer's check (a leak ends the worker with LSan's exit code, which
// the master reports) and the coverage profile.
[[noreturn]] void end_worker(int code) {
#ifdef ATOLL_HAS_LSAN
  if (__lsan_do_recoverable_leak_check() != 0 && code == 0) code = 23;  // LSan's exit code
#endif
#ifdef ATOLL_COVERAGE
  __llvm_profile_write_file();
#endif
  std::_Exit(code);
}

// An ending that is not a clean exit: a signal, or a non-zero code.
bool abnormal(int status) { return !WIFEXITED(status) || WEXITSTATUS(status) != 0; }

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return std::string("killed by signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")" +
           (WCOREDUMP(status) ? ", core dumped" : "");
  }
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "stopped";
}

}  // namespace

void block_master_signals() {
  sigset_t set = master_signals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
}

void sd_notify_state(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
           socklen_t(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

std::vector<int> upgrade_listeners() {
  std::vector<int> fds;
  if (const char* list = std::getenv("ATOLL_INHERIT_FDS"); list && *list) {
    std::string s(list);
    std::size_t pos = 0;
    while (pos < s.size()) {
      std::size_t comma = s.find(',', pos);
      if (comma == std::string::npos) comma = s.size();
      int fd = std::atoi(s.substr(pos, comma - pos).c_str());
      if (fd > 2) fds.push_back(fd);
      pos = comma + 1;
    }
  }
  return fds;
}

std::vector<int> systemd_listeners() {
  std::vector<int> fds;
  const char* pid = std::getenv("LISTEN_PID");
  const char* n = std::getenv("LISTEN_FDS");
  if (pid && n && std::atol(pid) == long(::getpid())) {
    for (int i = 0; i < std::atoi(n); ++i) fds.push_back(3 + i);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
  }
  return fds;
}

int supervise(SupervisorOptions& o) {
  sigset_t set = master_signals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    log::error("supervisor: signalfd failed: {}", std::strerror(errno));
    return 1;
  }
  std::deque<std::int64_t> restarts;  // times of recent restarts
  std::vector<Worker> workers;
  unsigned generation = 1;
  bool draining = false;
  int exit_code = 0;
  // Workers that crashed, failed, or ended badly while being stopped: a clean
  // drain after any of them still exits 4, so the death is not lost.
  unsigned abnormal_ends = 0;
  pid_t upgrade_child = 0;
  // An upgrading parent to stop once our workers are ready.
  pid_t upgrade_parent = 0;
  if (const char* p = std::getenv("ATOLL_UPGRADE_PARENT")) upgrade_parent = pid_t(std::atol(p));
  unsetenv("ATOLL_UPGRADE_PARENT");
  // The pid file's lock, held for the master's life. An upgrade's new master
  // takes the file over only once its workers are ready: until then (and for
  // good if it fails) `atoll reload` still reaches the old one.
  int pid_fd = o.pid_fd;
  auto take_pid_file = [&] {
    try {
      pid_fd = hold_pid_file(o.pid_file, upgrade_parent);
      return true;
    } catch (const std::exception& e) {
      log::error("supervisor: {}", e.what());
      return false;
    }
  };
  if (pid_fd < 0 && !o.pid_file.empty() && upgrade_parent == 0 && !take_pid_file()) {
    ::close(sfd);
    return 1;
  }
  unsetenv("ATOLL_INHERIT_FDS");
  bool announced_ready = false;
  std::int64_t watchdog_every_ms = 0;
  if (const char* w = std::getenv("WATCHDOG_USEC")) watchdog_every_ms = std::atoll(w) / 2000;
  std::int64_t last_watchdog = 0;

  auto start_worker = [&](unsigned index, unsigned gen) -> bool {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
      log::error("supervisor: pipe failed: {}", std::strerror(errno));
      return false;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      log::error("supervisor: fork failed: {}", std::strerror(errno));
      ::close(pipefd[0]);
      ::close(pipefd[1]);
      return false;
    }
    if (pid == 0) {
      // The worker: SIGCHLD back to normal; the stop and reload signals stay
      // blocked, for it to wait for (runtime::wait_for_signal). Unblocking
      // them here would let a SIGTERM that comes before the worker is ready
      // to wait (a drain just after a reload) kill it instead of draining it.
      ::close(pipefd[0]);
      ::close(sfd);
      sigset_t chld;
      sigemptyset(&chld);
      sigaddset(&chld, SIGCHLD);
      sigprocmask(SIG_UNBLOCK, &chld, nullptr);
      ::signal(SIGCHLD, SIG_DFL);
      unsetenv("NOTIFY_SOCKET");  // only the master speaks to systemd
      end_worker(o.run_worker(index, gen, pipefd[1]));
    }
    ::close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    workers.push_back({pid, index, gen, pipefd[0]});
    log::info("supervisor: worker {} (generation {}) started as pid {}", index, gen, pid);
    return true;
  };

  auto stop_workers = [&](auto pred) {
    for (auto& w : workers)
      if (!w.stopping && pred(w)) {
        ::kill(w.pid, SIGTERM);
        w.stopping = true;
        w.stop_sent_ms = monotonic_ms();
      }
  };

  for (unsigned i = 0; i < o.workers; ++i) start_worker(i, generation);

  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({sfd, POLLIN, 0});
    if (o.wake_fd >= 0) fds.push_back({o.wake_fd, POLLIN, 0});
    for (auto& w : workers)
      if (!w.ready && w.ready_fd >= 0) fds.push_back({w.ready_fd, POLLIN, 0});
    int timeout = 200;  // to enforce stop timeouts and the systemd watchdog
    ::poll(fds.data(), fds.size(), timeout);
    std::int64_t now = monotonic_ms();
    if (o.wake_fd >= 0 && (fds[1].revents & POLLIN) && o.on_wake) o.on_wake();

    // Readiness.
    for (auto& w : workers) {
      if (w.ready || w.ready_fd < 0) continue;
      char c;
      ssize_t n = ::read(w.ready_fd, &c, 1);
      if (n == 1) {
        w.ready = true;
        ::close(w.ready_fd);
        w.ready_fd = -1;
      }
    }
    // Is the current generation fully ready? Then retire older ones.
    bool current_ready = !draining;
    unsigned current_count = 0;
    for (auto& w : workers)
      if (w.generation == generation && !w.stopping) {
        ++current_count;
        current_ready = current_ready && w.ready;
      }
    if (current_ready && current_count == o.workers) {
      stop_workers([&](const Worker& w) { return w.generation < generation; });
      if (!announced_ready) {
        announced_ready = true;
        sd_notify_state("READY=1\nSTATUS=serving\nMAINPID=" + std::to_string(::getpid()));
        if (upgrade_parent > 0) {
          if (pid_fd < 0 && !o.pid_file.empty()) take_pid_file();
          log::info("supervisor: upgrade complete; stopping the old master (pid {})",
                    upgrade_parent);
          ::kill(upgrade_parent, SIGTERM);
          upgrade_parent = 0;
        }
      }
    }
    if (watchdog_every_ms && now - last_watchdog >= watchdog_every_ms) {
      last_watchdog = now;
      sd_notify_state("WATCHDOG=1");
    }
    // Workers that ignore SIGTERM past the stop timeout.
    for (auto& w : workers)
      if (w.stopping && now - w.stop_sent_ms > o.stop_timeout_ms) {
        log::warn("supervisor: worker pid {} did not stop within {} ms; killing it", w.pid,
                  o.stop_timeout_ms);
        ::kill(w.pid, SIGKILL);
        w.stop_sent_ms = now;
      }

    // Signals.
    signalfd_siginfo si;
    while (::read(sfd, &si, sizeof si) == ssize_t(sizeof si)) {
      int sig = int(si.ssi_signo);
      if (sig == SIGCHLD) continue;  // reaped below
      if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
        if (!draining) {
          log::info("supervisor: signal {}: draining {} worker(s)", sig, workers.size());
          sd_notify_state("STOPPING=1");
          draining = true;
          stop_workers([](const Worker&) { return true; });
        }
      } else if (sig == SIGHUP && !draining) {
        sd_notify_state("RELOADING=1");
        bool ok = !o.reload || o.reload();
        if (ok) {
          ++generation;
          log::info("supervisor: reloading: starting generation {}", generation);
          for (unsigned i = 0; i < o.workers; ++i) start_worker(i, generation);
          announced_ready = false;  // READY=1 again once the new generation is up
        } else {
          log::error("supervisor: reload refused; the current settings stay");
          sd_notify_state("READY=1");
        }
      } else if (sig == SIGUSR2 && !draining) {
        if (upgrade_child) {
          log::warn("supervisor: an upgrade (pid {}) is already under way", upgrade_child);
          continue;
        }
        pid_t pid = ::fork();
        if (pid == 0) {
          std::string fd_list;
          for (int fd : o.inherited_fds) {
            fcntl(fd, F_SETFD, 0);  // keep across exec
            fd_list += (fd_list.empty() ? "" : ",") + std::to_string(fd);
          }
          setenv("ATOLL_INHERIT_FDS", fd_list.c_str(), 1);
          setenv("ATOLL_UPGRADE_PARENT", std::to_string(::getppid()).c_str(), 1);
          sigprocmask(SIG_UNBLOCK, &set, nullptr);
          std::vector<char*> argv;
          for (auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
          argv.push_back(nullptr);
          ::execv(argv[0], argv.data());
          std::fprintf(stderr, "upgrade: cannot exec %s: %s\n", argv[0], std::strerror(errno));
          std::_Exit(127);
        }
        if (pid > 0) {
          upgrade_child = pid;
          log::info("supervisor: upgrading: started {} as pid {}", o.argv.empty() ? "?" : o.argv[0],
                    pid);
        } else {
          log::error("supervisor: upgrade fork failed: {}", std::strerror(errno));
        }
      }
    }

    // Children that ended.
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      if (pid == upgrade_child) {
        log::error("supervisor: the upgraded master (pid {}) {}; still serving with this one", pid,
                   describe_status(status));
        upgrade_child = 0;
        continue;
      }
      auto it = std::find_if(workers.begin(), workers.end(),
                             [&](const Worker& w) { return w.pid == pid; });
      if (it == workers.end()) continue;
      Worker w = *it;
      workers.erase(it);
      if (w.ready_fd >= 0) ::close(w.ready_fd);
      if (abnormal(status)) ++abnormal_ends;
      if (w.stopping) {
        if (abnormal(status))
          log::error("supervisor: worker {} (pid {}) {} while stopping", w.index, pid,
                     describe_status(status));
        else
          log::info("supervisor: worker {} (pid {}) {}", w.index, pid, describe_status(status));
        continue;
      }
      if (draining) continue;
      log::error("supervisor: worker {} (pid {}) {}; restarting it", w.index, pid,
                 describe_status(status));
      restarts.push_back(now);
      while (!restarts.empty() && now - restarts.front() > o.restart_window_ms)
        restarts.pop_front();
      if (int(restarts.size()) > o.max_restarts) {
        log::error(
            "supervisor: {} restarts within {} ms (limit {}): giving up; check the worker's log "
            "above",
            restarts.size(), o.restart_window_ms, o.max_restarts);
        exit_code = 3;
        draining = true;
        sd_notify_state("STOPPING=1\nSTATUS=restart intensity exceeded");
        stop_workers([](const Worker&) { return true; });
        continue;
      }
      start_worker(w.index, w.generation);
    }

    if (draining && workers.empty()) break;
  }
  ::close(sfd);
  if (pid_fd >= 0) {
    // Remove the pid file only if it is still ours (an upgrade replaced it).
    if (pid_in_file(o.pid_file) == ::getpid()) std::remove(o.pid_file.c_str());
    ::close(pid_fd);
  }
  if (exit_code == 0 && abnormal_ends) {
    log::error("supervisor: stopped; {} worker(s) ended abnormally (see above): exit code 4",
               abnormal_ends);
    return 4;
  }
  log::info("supervisor: stopped");
  return exit_code;
}

}  // namespace atl::runtime
