#pragma once
// Logging: one line per event on stderr, prefixed with level and loop.
//
// Logging is for rare events (errors, stalls, lifecycle). Per-request lines
// belong to the access log middleware, which writes off the loop.
#include <fmt/format.h>

#include <string_view>

namespace atl::log {

enum class Level { debug, info, warn, error };

/// Lines below this level are dropped. Default: info (ATOLL_LOG=debug lowers it).
Level threshold() noexcept;
void set_threshold(Level level) noexcept;
void write(Level level, std::string_view line) noexcept;

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (threshold() <= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (threshold() <= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (threshold() <= Level::warn) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace atl::log
