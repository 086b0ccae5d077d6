#pragma once
// Access log: one line per request, written off the event loops.
//
// Lines go to an in-memory queue that a writer thread empties in batches; a
// loop only formats and appends. When the queue is full (a slow or full
// disk) new lines are dropped and counted: serving never waits for the log.
//
// | option       | default  | why                                                        |
// |--------------|----------|------------------------------------------------------------|
// | path         | "-"      | stdout, for containers and systemd; else a file, appended  |
// | format       | json     | one JSON object per line: fields, not a format to re-parse |
// | max_pending  | 4 MiB    | bounds memory while the disk is slow; beyond it, drop      |
// | flush_ms     | 100      | batches writes; a line is on disk within this long         |
//
// JSON fields: time, method, target, status, bytes, duration_ms, request_id,
// peer, host, user_agent, referer. The combined format is nginx's default.
#include <atoll/web/pipeline.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace atl::web {

struct AccessLogOptions {
  std::string path = "-";
  enum class Format { json, combined } format = Format::json;
  std::size_t max_pending = 4 * 1024 * 1024;
  std::int64_t flush_ms = 100;
};

/// The writer behind an access_log middleware (for stats and tests).
class AccessLogSink {
 public:
  /// Opens the file (append, created 0640); throws std::runtime_error naming it.
  explicit AccessLogSink(const AccessLogOptions& options);
  ~AccessLogSink();  // writes what is queued, then stops
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;

  /// Queues one line (with its newline); never blocks on I/O.
  void append(std::string_view line);
  /// Lines dropped because the queue was full or the disk refused them.
  std::uint64_t dropped() const noexcept;
  /// Blocks until everything queued so far is written (tests, shutdown).
  void flush();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

Middleware access_log(AccessLogOptions options = {});
/// The same, writing to an existing sink (shared by several pipelines).
Middleware access_log(std::shared_ptr<AccessLogSink> sink, AccessLogOptions::Format format);

}  // namespace atl::web
