#include <atoll/host/shared_state.hpp>

#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <system_error>
#include <thread>

namespace atl::host {

namespace {
// A shared (not process-private) futex: the waiters are in other processes.
long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* timeout) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, timeout, nullptr,
                   0);
}

std::uint64_t fnv1a(std::string_view s) noexcept {
  std::uint64_t h = 1469598103934665603u;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211u;
  return h;
}

std::int64_t now_ms() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}
}  // namespace

static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "shared counters must not hide a lock inside");

std::shared_ptr<SharedState> SharedState::create() {
  std::size_t bytes = sizeof(SharedState);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    throw std::system_error(errno, std::generic_category(), "mapping the workers' shared state");
  auto* state = new (p) SharedState();  // the atomics start at zero, as the fresh pages
  return std::shared_ptr<SharedState>(state, [bytes](SharedState* s) {
    s->~SharedState();
    ::munmap(s, bytes);
  });
}

namespace {
bool process_gone(std::int32_t pid) noexcept {
  return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
}
}  // namespace

SiteCounters* SharedState::site(std::string_view name) noexcept {
  if (name.empty() || name.size() >= sizeof(SiteSlot::name)) return nullptr;
  auto me = std::int32_t(::getpid());
  std::size_t start = fnv1a(name) % max_sites;
  for (std::size_t i = 0; i < max_sites; ++i) {
    SiteSlot& s = sites_[(start + i) % max_sites];
    std::uint32_t st = s.state.load(std::memory_order_acquire);
    bool mine = false;
    if (st == empty && s.state.compare_exchange_strong(st, claiming, std::memory_order_acq_rel)) {
      s.claimer.store(me, std::memory_order_release);
      mine = true;
    }
    // Another process is writing this slot's name: wait for it, however
    // long it is descheduled (moving on would give the name a second slot,
    // and Prometheus refuses a scrape with a series twice). If it died
    // mid-claim, take the slot over.
    for (int spin = 0; !mine && st == claiming; ++spin) {
      std::int32_t owner = s.claimer.load(std::memory_order_acquire);
      if (process_gone(owner) &&
          s.claimer.compare_exchange_strong(owner, me, std::memory_order_acq_rel)) {
        mine = true;
        break;
      }
      if (spin < 100)
        std::this_thread::yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      st = s.state.load(std::memory_order_acquire);
    }
    if (mine) {
      std::memcpy(s.name, name.data(), name.size());
      s.name[name.size()] = '\0';
      s.state.store(ready, std::memory_order_release);
      return &s.counters;
    }
    if (st == ready && std::string_view(s.name) == name) return &s.counters;
  }
  return nullptr;
}

SharedState::Worker* SharedState::claim_worker() noexcept {
  auto me = std::int32_t(::getpid());
  for (auto& w : workers) {
    std::int32_t pid = w.pid.load(std::memory_order_acquire);
    if ((pid == 0 || process_gone(pid)) &&
        w.pid.compare_exchange_strong(pid, me, std::memory_order_acq_rel)) {
      // A dead worker's figures go with it (its counters in the totals stay).
      w.connections.store(0, std::memory_order_relaxed);
      w.accepted.store(0, std::memory_order_relaxed);
      w.loop_stalls.store(0, std::memory_order_relaxed);
      w.loop_lag_ms.store(0, std::memory_order_relaxed);
      w.loaded.store(generation(), std::memory_order_release);
      return &w;
    }
  }
  return nullptr;
}

void SharedState::release_worker(Worker* w) noexcept {
  if (w) w->pid.store(0, std::memory_order_release);
}

std::uint32_t SharedState::announce_deploy() noexcept {
  std::uint32_t gen = generation_.fetch_add(1, std::memory_order_acq_rel) + 1;
  futex(&generation_, FUTEX_WAKE, INT32_MAX, nullptr);
  return gen;
}

std::uint32_t SharedState::wait_for_change(std::uint32_t seen, int timeout_ms) noexcept {
  timespec ts{timeout_ms / 1000, long(timeout_ms % 1000) * 1'000'000};
  // EAGAIN: it changed before we slept; EINTR/ETIMEDOUT: look and return.
  futex(&generation_, FUTEX_WAIT, seen, &ts);
  return generation();
}

bool SharedState::wait_until_loaded(std::uint32_t gen, int timeout_ms) const noexcept {
  std::int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    bool all = true;
    for (const auto& w : workers) {
      std::int32_t pid = w.pid.load(std::memory_order_acquire);
      if (pid <= 0) continue;
      // A worker that died (and is being replaced) loads the newest table
      // when it starts: it is not waited for.
      if (std::int32_t(w.loaded.load(std::memory_order_acquire) - gen) < 0 && !process_gone(pid)) {
        all = false;
        break;
      }
    }
    if (all) return true;
    if (now_ms() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace atl::host
