#include <atoll/runtime/log.hpp>
#include <atoll/runtime/loop.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace atl::log {

namespace {
Level initial_threshold() {
  const char* env = std::getenv("ATOLL_LOG");
  if (!env) return Level::info;
  if (!std::strcmp(env, "debug")) return Level::debug;
  if (!std::strcmp(env, "warn")) return Level::warn;
  if (!std::strcmp(env, "error")) return Level::error;
  return Level::info;
}
std::atomic<Level> current{initial_threshold()};
constexpr const char* names[] = {"debug", "info", "warn", "error"};
}  // namespace

Level threshold() noexcept { return current.load(std::memory_order_relaxed); }
void set_threshold(Level level) noexcept { current.store(level, std::memory_order_relaxed); }

void write(Level level, std::string_view line) noexcept {
  try {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    tm utc;
    gmtime_r(&ts.tv_sec, &utc);
    auto* loop = runtime::Loop::current();
    std::string out = fmt::format(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} [pid {}{}] {}\n", utc.tm_year + 1900,
        utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ts.tv_nsec / 1000000,
        names[int(level)], getpid(), loop ? fmt::format(" loop {}", loop->index()) : "", line);
    // One write(2) per line keeps lines whole when processes share stderr.
    [[maybe_unused]] auto n = ::write(2, out.data(), out.size());
  } catch (...) {
  }
}

}  // namespace atl::log
