#pragma once
// Monotonic milliseconds: the unit of every deadline in atoll.
#include <cstdint>
#include <ctime>

namespace atl::runtime {

/// Milliseconds on CLOCK_MONOTONIC (precise, one vDSO call).
inline std::int64_t monotonic_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

/// Milliseconds on CLOCK_MONOTONIC_COARSE: a few ns, a few ms of resolution;
/// good enough to time handlers against a 100 ms watchdog threshold.
inline std::int64_t coarse_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace atl::runtime
