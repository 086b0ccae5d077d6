#include <atoll/web/access_log.hpp>

#include <atoll/runtime/clock.hpp>
#include <atoll/runtime/log.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace atl::web {

namespace {
// Lines are written in batches of about this size: big enough that a write
// carries hundreds of lines, small enough to cost tens of microseconds.
constexpr std::size_t batch_bytes = 64 * 1024;
}  // namespace

struct AccessLogSink::State {
  int fd = -1;
  bool own_fd = false;
  std::size_t max_pending;
  std::int64_t flush_ms;
  std::mutex mutex;
  std::condition_variable cv;
  std::condition_variable flushed_cv;
  std::string pending;
  std::uint64_t appended = 0;  // lines queued, ever
  std::uint64_t written = 0;   // lines handled by the writer (written or dropped)
  std::uint64_t dropped = 0;
  bool stopping = false;
  std::thread writer;

  void run() {
    std::string batch;
    std::unique_lock lock(mutex);
    for (;;) {
      cv.wait(lock, [&] { return stopping || !pending.empty(); });
      if (pending.empty() && stopping) return;
      // Let a batch gather unless it is already big.
      if (!stopping && pending.size() < batch_bytes)
        cv.wait_for(lock, std::chrono::milliseconds(flush_ms),
                    [&] { return stopping || pending.size() >= batch_bytes; });
      batch.clear();
      batch.swap(pending);
      std::uint64_t lines = appended - written;
      lock.unlock();
      bool ok = write_all(batch);
      lock.lock();
      if (!ok) dropped += lines;
      written += lines;
      flushed_cv.notify_all();
    }
  }

  bool write_all(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        static std::atomic<std::int64_t> last_warning{0};
        std::int64_t now = runtime::monotonic_ms();
        if (now - last_warning.load() > 10'000) {
          last_warning = now;
          log::error("access log: write failed ({}); dropping lines, serving goes on",
                     std::strerror(errno));
        }
        return false;
      }
      off += std::size_t(n);
    }
    return true;
  }
};

AccessLogSink::AccessLogSink(const AccessLogOptions& options) : state_(std::make_unique<State>()) {
  state_->max_pending = options.max_pending;
  state_->flush_ms = options.flush_ms;
  if (options.path == "-" || options.path.empty()) {
    state_->fd = 1;
  } else {
    state_->fd = ::open(options.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (state_->fd < 0)
      throw std::runtime_error("access log: cannot open '" + options.path +
                               "': " + std::strerror(errno));
    state_->own_fd = true;
  }
  state_->writer = std::thread([s = state_.get()] {
    // A lower priority than the loops: the writer needs little CPU and
    // should not take a busy core's timeslice from a loop.
    ::setpriority(PRIO_PROCESS, pid_t(::syscall(SYS_gettid)), 10);
    s->run();
  });
}

AccessLogSink::~AccessLogSink() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  state_->writer.join();
  if (state_->own_fd) ::close(state_->fd);
}

void AccessLogSink::append(std::string_view line) {
  bool wake = false;
  {
    std::lock_guard lock(state_->mutex);
    if (state_->pending.size() + line.size() > state_->max_pending) {
      ++state_->dropped;
      return;
    }
    // Wake the writer when the queue starts, and again when it reaches a
    // batch: otherwise it sleeps out flush_ms and then writes megabytes in
    // one burst, which holds a busy core for milliseconds.
    std::size_t before = state_->pending.size();
    wake = before == 0 || (before < batch_bytes && before + line.size() >= batch_bytes);
    state_->pending.append(line);
    ++state_->appended;
  }
  if (wake) state_->cv.notify_one();
}

std::uint64_t AccessLogSink::dropped() const noexcept {
  std::lock_guard lock(state_->mutex);
  return state_->dropped;
}

void AccessLogSink::flush() {
  std::unique_lock lock(state_->mutex);
  std::uint64_t target = state_->appended;
  state_->cv.notify_one();
  state_->flushed_cv.wait(lock, [&] { return state_->written >= target; });
}

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629:
// no overlong forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // a surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

// A JSON string of request bytes. Header values may hold any octet (RFC 9110
// 5.5, obs-text): well-formed UTF-8 is kept, and every other byte above 0x7F
// is written as the code point of the same value (\u00XX, as if Latin-1), so
// each line stays valid JSON and no byte is lost.
void json_string(std::string& out, std::string_view s) {
  auto code_point = [&out](unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", c);
    out += buf;
  };
  out += '"';
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (std::size_t n = utf8_sequence(s.substr(i))) {
        out.append(s.substr(i, n));
        i += n - 1;
      } else {
        code_point(c);
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f)
          code_point(c);
        else
          out += char(c);
    }
  }
  out += '"';
}

// Printable ASCII only: a combined-format line must stay one line.
void quoted(std::string& out, std::string_view s) {
  out += '"';
  if (s.empty()) out += '-';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  out += '"';
}

void format_line(std::string& out, AccessLogOptions::Format format, Conn& c, int status,
                 double ms) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  char when[40];
  if (format == AccessLogOptions::Format::json) {
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &utc);
    out += "{\"time\":\"";
    out += when;
    char frac[24];
    std::snprintf(frac, sizeof frac, ".%03dZ\"", int(ts.tv_nsec / 1000000));
    out += frac;
    out += ",\"method\":";
    json_string(out, c.method());
    out += ",\"target\":";
    json_string(out, c.target());
    out += ",\"status\":" + std::to_string(status);
    out += ",\"bytes\":" + std::to_string(c.bytes_sent());
    char dur[32];
    std::snprintf(dur, sizeof dur, ",\"duration_ms\":%.3f", ms);
    out += dur;
    out += ",\"request_id\":";
    json_string(out, c.request_id);
    out += ",\"peer\":";
    json_string(out, c.peer().host());
    out += ",\"host\":";
    json_string(out, c.host());
    out += ",\"user_agent\":";
    json_string(out, c.header("user-agent"));
    out += ",\"referer\":";
    json_string(out, c.header("referer"));
    out += "}\n";
  } else {
    std::strftime(when, sizeof when, "[%d/%b/%Y:%H:%M:%S +0000]", &utc);
    out += c.peer().host();
    out += " - - ";
    out += when;
    out += ' ';
    quoted(out, std::string(c.method()) + " " + std::string(c.target()) + " " +
                    std::string(c.version()));
    out += ' ' + std::to_string(status) + ' ' + std::to_string(c.bytes_sent()) + ' ';
    quoted(out, c.header("referer"));
    out += ' ';
    quoted(out, c.header("user-agent"));
    out += '\n';
  }
}

}  // namespace

Middleware access_log(std::shared_ptr<AccessLogSink> sink, AccessLogOptions::Format format) {
  return [sink = std::move(sink), format](Conn& c, const App& next) -> Task<> {
    timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    std::exception_ptr failure;
    try {
      co_await next(c);
    } catch (...) {
      failure = std::current_exception();
    }
    int status = c.status();
    if (failure && !c.response_started()) {
      status = 500;
      try {
        std::rethrow_exception(failure);
      } catch (const http::HttpError& e) {
        status = e.status();
      } catch (...) {
      }
    }
    timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = double(t1.tv_sec - t0.tv_sec) * 1e3 + double(t1.tv_nsec - t0.tv_nsec) / 1e6;
    thread_local std::string line;
    line.clear();
    format_line(line, format, c, status, ms);
    sink->append(line);
    if (failure) std::rethrow_exception(failure);
  };
}

Middleware access_log(AccessLogOptions options) {
  return access_log(std::make_shared<AccessLogSink>(options), options.format);
}

}  // namespace atl::web
