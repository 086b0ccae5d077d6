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

/// The deadline, in monotonic_ms() units, for a wait of at least `ms`
/// milliseconds from now. Timers fire once the truncated clock reaches their
/// deadline, so monotonic_ms() + ms would fire up to 1 ms early; rounding the
/// current reading up makes a sleep never shorter than asked.
inline std::int64_t deadline_after_ms(std::int64_t ms) noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  std::int64_t now_ceil = std::int64_t(ts.tv_sec) * 1000 + (ts.tv_nsec + 999999) / 1000000;
  return now_ceil + ms;
}

/// Milliseconds on CLOCK_MONOTONIC_COARSE: a few ns, a few ms of resolution;
/// good enough to time handlers against a 100 ms watchdog threshold.
inline std::int64_t coarse_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace atl::runtime
