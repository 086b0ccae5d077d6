#include <atoll/runtime/signals.hpp>

#include <pthread.h>

namespace atl::runtime {

namespace {
sigset_t termination_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR2, SIGQUIT}) sigaddset(&set, s);
  return set;
}
}  // namespace

void block_termination_signals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set = termination_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_signal() {
  sigset_t set = termination_set();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace atl::runtime
