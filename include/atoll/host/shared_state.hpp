#pragma once
// SharedState: what the workers of one `atoll serve` share. The master maps
// it before it forks them (MAP_SHARED | MAP_ANONYMOUS), so a worker that
// crashes and is replaced finds it as it was. It holds
//   - the counters behind /metrics, so a scrape answered by any worker counts
//     the requests of all of them;
//   - each worker's connection figures, refreshed by the worker every poll;
//   - the deploy generation: a deploy through one worker's admin API wakes
//     every other worker at once (a futex in the shared page), and the API
//     answers when every live worker has loaded the new site table.
// Everything in it is a lock-free atomic: a worker that dies mid-update
// leaves nothing locked.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace atl::host {

/// Status codes counted one by one; the rest are counted as "other", so the
/// metric's cardinality stays bounded.
inline constexpr std::array<int, 12> counted_codes = {200, 206, 301, 302, 304, 307,
                                                      308, 400, 404, 405, 500, 503};
/// Upper bounds of the request latency histogram, in milliseconds.
inline constexpr std::array<double, 11> latency_buckets_ms = {0.1, 0.25, 0.5, 1,   2.5, 5,
                                                              10,  25,   50,  100, 250};

struct SiteCounters {
  std::array<std::atomic<std::uint64_t>, counted_codes.size() + 1> by_code;
  std::atomic<std::uint64_t> bytes;
};

class SharedState {
 public:
  static constexpr std::size_t max_sites = 2048;
  static constexpr std::size_t max_workers = 128;

  /// Maps a zeroed region: shared with every child forked after this call.
  static std::shared_ptr<SharedState> create();

  /// The counters of site `name` (at most 63 bytes), claimed on first use.
  /// Null when all max_sites slots are taken (that site is then counted in
  /// the totals only).
  SiteCounters* site(std::string_view name) noexcept;
  /// Calls f(name, counters) for every site that has counters (once per
  /// name: see site()).
  template <class F>
  void for_each_site(F&& f) const {
    for (const auto& s : sites_)
      if (s.state.load(std::memory_order_acquire) == ready)
        f(std::string_view(s.name), static_cast<const SiteCounters&>(s.counters));
  }

  // Totals over every worker.
  std::array<std::atomic<std::uint64_t>, latency_buckets_ms.size() + 1> latency;
  std::atomic<std::uint64_t> latency_count;
  std::atomic<std::uint64_t> latency_sum_ns;
  std::atomic<std::uint64_t> cache_hits, cache_misses, db_errors, unknown_host;
  /// Bumped by a cache purge: every loop of every worker drops its resolver
  /// cache when it sees a new value.
  std::atomic<std::uint64_t> purge_epoch;

  /// One worker's figures, written by that worker. A worker claims a free
  /// slot (or one whose process died) when it starts and frees it when it
  /// stops: during a reload the old and the new worker of one index each
  /// have their own.
  struct Worker {
    std::atomic<std::int32_t> pid;           // 0: free
    std::atomic<std::uint32_t> loaded;       // the deploy generation it has loaded
    std::atomic<std::uint64_t> connections;  // open now (refreshed every poll)
    std::atomic<std::uint64_t> accepted;
    std::atomic<std::uint64_t> loop_stalls;
    std::atomic<std::int64_t> loop_lag_ms;  // the worst of its loops at the last probe
  };
  std::array<Worker, max_workers> workers;
  /// Claims a worker slot for this process; null if all are taken by live
  /// processes. release_worker() frees it.
  Worker* claim_worker() noexcept;
  void release_worker(Worker* w) noexcept;

  /// The deploy generation; announce_deploy() bumps it and wakes waiters.
  std::uint32_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  std::uint32_t announce_deploy() noexcept;
  /// Sleeps until the generation differs from `seen` or `timeout_ms`
  /// passes; returns the generation then.
  std::uint32_t wait_for_change(std::uint32_t seen, int timeout_ms) noexcept;
  /// Waits until every live worker (pid set and running) has loaded
  /// generation `gen`, or `timeout_ms` passes; false on timeout.
  bool wait_until_loaded(std::uint32_t gen, int timeout_ms) const noexcept;

 private:
  static constexpr std::uint32_t empty = 0, claiming = 1, ready = 2;
  struct SiteSlot {
    std::atomic<std::uint32_t> state;
    std::atomic<std::int32_t> claimer;  // the pid writing the name (while claiming)
    char name[64];
    SiteCounters counters;
  };
  std::atomic<std::uint32_t> generation_;
  std::array<SiteSlot, max_sites> sites_;
};

}  // namespace atl::host
