// Supervisor: how a worker's ending shows in the master's exit status.
//
// Each test forks a master that runs supervise() with one worker, waits for
// the worker to say it is ready, drains the master with SIGTERM and reads its
// exit status: 0 only if every worker ended cleanly, 4 if one did not.
#include <atoll/runtime/signals.hpp>
#include <atoll/runtime/supervisor.hpp>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>

namespace {

using atl::runtime::SupervisorOptions;

// Runs a master whose worker serves until SIGTERM, then does `at_stop` and
// returns its result as its exit code. Returns the master's wait status.
int drain_master(std::function<int()> at_stop) {
  int ready[2];
  EXPECT_EQ(::pipe(ready), 0);
  pid_t master = ::fork();
  if (master == 0) {
    ::close(ready[0]);
    SupervisorOptions o;
    o.workers = 1;
    o.run_worker = [&](unsigned, unsigned, int ready_fd) {
      atl::runtime::block_termination_signals();
      [[maybe_unused]] auto a = ::write(ready_fd, "R", 1);
      [[maybe_unused]] auto b = ::write(ready[1], "R", 1);
      atl::runtime::wait_for_signal();
      return at_stop();
    };
    std::_Exit(atl::runtime::supervise(o));
  }
  ::close(ready[1]);
  char c = 0;
  EXPECT_EQ(::read(ready[0], &c, 1), 1) << "the worker never said it was ready";
  ::close(ready[0]);
  // The worker is up, so the master's signal mask is set: SIGTERM drains.
  ::kill(master, SIGTERM);
  int status = 0;
  EXPECT_EQ(::waitpid(master, &status, 0), master);
  return status;
}

TEST(Supervisor, ACleanDrainExitsZero) {
  int status = drain_master([] { return 0; });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Supervisor, AWorkerThatFailsWhileStoppingMakesTheMasterExit4) {
  int status = drain_master([] { return 1; });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4);
}

TEST(Supervisor, AWorkerKilledWhileStoppingMakesTheMasterExit4) {
  int status = drain_master([] {
    ::signal(SIGABRT, SIG_DFL);
    std::abort();  // as a sanitizer's report or a failed assertion ends it
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4);
}

#if defined(__SANITIZE_ADDRESS__)
char* volatile leaked = nullptr;  // a global the leak test overwrites

// A worker ends with _Exit, which skips LeakSanitizer's exit-time check; the
// supervisor runs the check itself, so a leak in a worker is not lost.
TEST(Supervisor, ALeakInAWorkerIsReportedInTheMastersStatus) {
  int status = drain_master([] {
    // Lost: the only pointer to it is overwritten before the check runs.
    leaked = new char[4096];
    leaked[0] = 1;
    leaked = nullptr;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4);
}
#endif

}  // namespace
