#pragma once
// At most N events a second, counting the ones turned away: for log lines
// and audit entries that a flood must not turn into a full disk.
#include <cstdint>
#include <ctime>
#include <mutex>
#include <utility>

namespace atl::runtime {

class PerSecondLimit {
 public:
  explicit PerSecondLimit(unsigned per_second) : per_second_(per_second) {}

  /// -1 if this event is over the limit for its second (it is counted);
  /// otherwise how many were turned away since the last one let through, so
  /// the caller can say so. Safe to call from any thread.
  long take(std::int64_t now_s = std::int64_t(std::time(nullptr))) {
    std::lock_guard lock(mutex_);
    if (now_s != second_) {
      second_ = now_s;
      used_ = 0;
    }
    if (used_ >= per_second_) {
      ++dropped_;
      return -1;
    }
    ++used_;
    return long(std::exchange(dropped_, 0));
  }

 private:
  std::mutex mutex_;
  unsigned per_second_;
  std::int64_t second_ = 0;
  unsigned used_ = 0;
  unsigned dropped_ = 0;
};

}  // namespace atl::runtime
