// The HTTP/1.1 connection: reading request heads into its buffer, the
// keep-alive loop that runs each request as an exchange (exchange.hpp), and
// the lingering close. Parsing is in h1_parser.cpp, writing in h1_writer.cpp.
#include "http/h1_detail.hpp"

#include <atoll/http/date.hpp>
#include <atoll/http/exchange.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/rate_limit.hpp>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace atl::http {

using namespace h1;

namespace h1 {

// Requests the parser refuses (431, 414, smuggling attempts, bad paths) are
// logged, but a flood must not fill the disk: at most 20 lines a second in
// this process, then one line for those left out.
void log_refused(const net::PeerAddress& peer, int status, std::string_view reason) {
  static runtime::PerSecondLimit limit(20);
  long dropped = limit.take();
  if (dropped < 0) return;
  if (dropped > 0)
    log::warn("refused {} more request(s) without logging each (at most 20 lines a second)",
              dropped);
  log::warn("refused a request from {}: {} {}", peer.to_string(), status, reason);
}

}  // namespace h1

// --- reading the head ---------------------------------------------------------

Http1Conn::Http1Conn(net::Socket& socket, const HttpOptions& options)
    : sock_(socket), opt_(options) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
  peer_ = &sock_.peer();
  tls_ = sock_.is_tls();
  sock_.set_io_timeout(opt_.write_timeout_ms);
}

void Http1Conn::ensure_in() {
  if (!in_) in_ = net::Buffer::lease();
}

// Reads more bytes into in_; 0 on success, -1 at EOF, else an errno value.
// `floor` is where compaction may move data to: past the head while a body
// is read, so header views stay valid for the handler.
bool Http1Conn::make_room(std::int64_t floor) {
  ensure_in();
  std::size_t low = std::size_t(floor);
  if (in_end_ == cap && in_start_ > low) {
    std::memmove(in_.data() + low, in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_ - low;
    in_start_ = low;
  }
  if (in_end_ == cap) {
    fill_error_ = ENOBUFS;
    return false;
  }
  return true;
}

Http1Conn::Fill Http1Conn::fill_now(std::int64_t floor) {
  if (!make_room(floor)) return Fill::failed;
  auto r = sock_.read_now({in_.data() + in_end_, cap - in_end_});
  if (r.error == EAGAIN) return Fill::wait;
  return took(r) ? Fill::got : Fill::failed;
}

bool Http1Conn::took(const net::IoResult& r) {
  if (!r || r.eof()) {
    fill_error_ = r.eof() ? -1 : r.error;
    return false;
  }
  in_end_ += r.bytes;
  return true;
}

Task<bool> Http1Conn::fill(std::int64_t floor) {
  if (!make_room(floor)) co_return false;
  auto r = co_await sock_.read({in_.data() + in_end_, cap - in_end_});
  co_return took(r);
}

Task<Http1Conn::Head> Http1Conn::read_head() {
  reset_request();
  head_error_ = {};
  expect_continue_ = continue_sent_ = streaming_ = upgrade_request_ = chunked_ = in_trailers_ =
      false;
  keep_alive_ = true;
  body_received_ = 0;
  body_started_ms_ = 0;
  body_floor_ = 0;
  if (paused_) {
    if (llhttp_get_errno(&parser_) == HPE_PAUSED_UPGRADE)
      llhttp_resume_after_upgrade(&parser_);
    else
      llhttp_resume(&parser_);
    paused_ = false;
  }
  std::int64_t deadline = 0;
  std::size_t scanned = in_start_;
  for (;;) {
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (in_start_ < in_end_ && (in_.data()[in_start_] == '\r' || in_.data()[in_start_] == '\n'))
      ++in_start_;
    if (in_start_ < in_end_) {
      if (!deadline) {
        // A TLS ClientHello (a handshake record: 0x16) on a plain port: the
        // client expects TLS, and an HTTP 400 in clear text would only be
        // garbage to it. Close at once.
        if (requests_ == 0 && in_.data()[in_start_] == 0x16) co_return Head::closed;
        deadline = sock_.loop_now() + opt_.header_timeout_ms;
        sock_.set_deadline(deadline);
      }
      std::string_view data(in_.data() + in_start_, in_end_ - in_start_);
      std::size_t from = scanned > in_start_ + 3 ? scanned - in_start_ - 3 : 0;
      std::size_t end = data.find("\r\n\r\n", from);
      // The limits hold for a head that arrived whole as much as for one
      // still arriving (a whole 10 KiB request line in one read is still 414).
      std::size_t head_len = end == std::string_view::npos ? data.size() : end + 4;
      std::size_t eol = data.substr(0, head_len).find("\r\n");
      if ((eol == std::string_view::npos ? head_len : eol) > opt_.max_request_line) {
        head_error_ = {
            414, "request line longer than " + std::to_string(opt_.max_request_line) + " bytes"};
        co_return Head::error;
      }
      std::size_t block = std::min(opt_.max_header_block, cap);
      if (end == std::string_view::npos ? data.size() >= block : head_len > block) {
        head_error_ = {431, "request head larger than " + std::to_string(block) + " bytes"};
        co_return Head::error;
      }
      if (end != std::string_view::npos) {
        sock_.set_deadline(0);
        co_return parse_head(head_len) ? Head::ok : Head::error;
      }
      // A head with bare LF line ends never holds CRLFCRLF: refuse it now
      // (parse_head() would), not when the header timeout ends the wait.
      for (std::size_t lf = data.find('\n', from); lf != std::string_view::npos;
           lf = data.find('\n', lf + 1)) {
        if (lf == 0 || data[lf - 1] != '\r') {
          sock_.set_deadline(0);
          in_start_ = in_end_;
          head_error_ = {400, std::string(bare_lf)};
          co_return Head::error;
        }
      }
      scanned = in_end_;
    } else {
      // Idle between requests: send what is pending, hold no buffer, and let
      // a drain close us at once.
      // (Without waiting when the kernel takes it all: no coroutine frame.)
      bool flushed = flush_now();
      if (!flushed) flushed = co_await flush();
      if (!flushed) co_return Head::closed;
      in_start_ = in_end_ = 0;
      scanned = 0;
      in_.release();
      if (requests_ == 0) {
        // A new connection is not idle: its first request may be on the way,
        // so even a draining server waits for it (up to the header timeout).
        // Closing it would reset a client that did nothing wrong.
        sock_.set_io_timeout(opt_.header_timeout_ms);
        auto ready = co_await sock_.wait_readable();
        sock_.set_io_timeout(opt_.write_timeout_ms);
        if (!ready) co_return Head::closed;
      } else if (sock_.draining()) {
        // Draining: bytes that already arrived are a request to answer (with
        // Connection: close); none means the connection is idle.
        if (!sock_.has_pending_input()) co_return Head::closed;
      } else {
        sock_.set_wake_on_drain(true);
        sock_.set_io_timeout(opt_.keepalive_timeout_ms);
        auto ready = co_await sock_.wait_readable();
        sock_.set_wake_on_drain(false);
        sock_.set_io_timeout(opt_.write_timeout_ms);
        if (!ready && !(ready.error == ESHUTDOWN && sock_.has_pending_input()))
          co_return Head::closed;
      }
    }
    Fill got = fill_now(0);
    if (got == Fill::wait) {
      bool ok = co_await fill(0);  // (on its own line: GCC 12, docs/coding-notes.md)
      got = ok ? Fill::got : Fill::failed;
    }
    if (got == Fill::failed) {
      sock_.set_deadline(0);
      if (fill_error_ == ETIMEDOUT && deadline) {
        head_error_ = {408, "request head not received within " +
                                std::to_string(opt_.header_timeout_ms) + " ms"};
        co_return Head::error;
      }
      co_return Head::closed;
    }
  }
}

// --- the connection loop --------------------------------------------------------

bool Http1Conn::will_close() const noexcept {
  return close_ || !keep_alive_ || broken_ || sock_.draining() ||
         requests_ >= opt_.max_requests_per_connection;
}

Task<> Http1Conn::run(const App& app) {
  bool refused_head = false;
  for (;;) {
    Head h = co_await read_head();
    if (h == Head::closed) break;
    if (h == Head::error) {
      log_refused(sock_.peer(), head_error_.status, head_error_.reason);
      co_await send_error_and_close(head_error_.status, head_error_.reason);
      refused_head = true;
      break;
    }
    ++requests_;
    // HTTP's rules for the exchange (exchange.hpp), the app awaited here so
    // the usual request costs no frame more; false: it broke mid-response.
    std::exception_ptr thrown;
    try {
      co_await app(*this);
    } catch (...) {
      thrown = std::current_exception();
    }
    if (thrown || !sent_) {
      bool whole = co_await finish_exchange(*this, thrown);
      if (!whole) break;
    }
    if (upgrade_) {  // the pipeline has returned: now the 101 and the new protocol
      co_await switch_protocols();
      break;
    }
    if (broken_) break;
    co_await finish_request();
    if (upgraded_ || will_close()) break;
  }
  // Bytes may still be on their way: a refused head, an unread body, requests
  // pipelined after the last one answered.
  bool unread = refused_head || (has_body_ && !body_done_) || in_start_ < in_end_;
  co_await flush();
  if (unread && !broken_ && !upgraded_) co_await linger();
}

// Closing a socket that has unread input makes the kernel send a RST, and a
// RST can destroy the response still on its way to the client (a 413 for an
// upload becomes "connection reset"). RFC 9112 §9.6: close in stages: stop
// writing, keep reading and discarding for a while, then close.
Task<> Http1Conn::linger() {
  if (sock_.draining()) co_return;  // a drain wants connections gone now
  sock_.shutdown_write();
  ensure_in();
  sock_.set_deadline(sock_.loop_now() + linger_ms);
  for (;;) {
    auto r = co_await sock_.read({in_.data(), cap});
    if (!r || r.eof()) break;
  }
  sock_.set_deadline(0);
  in_start_ = in_end_ = 0;
  in_.release();
}

Task<> Http1Conn::finish_request() {
  if (has_body_ && !body_done_ && !broken_) {
    if (expect_continue_ && !continue_sent_) {
      close_ = true;  // the client never sent the body; do not invite it now
    } else {
      // Skip an unread body (up to the body limit) to reach the next request.
      // (No co_await in a loop condition: GCC 12 miscompiles it.)
      for (;;) {
        std::span<const char> piece;
        try {
          piece = co_await read_body_chunk();
        } catch (...) {
          close_ = true;
          break;
        }
        if (piece.empty()) break;
      }
    }
  }
}

Task<> Http1Conn::send_error_and_close(int status, std::string_view reason) {
  close_ = true;
  if (started_) co_return;
  head_ = false;  // (the head may have been refused before it said HEAD)
  response_headers_.clear();
  co_await send_error(*this, status, error_line(status, reason));
  co_await flush();
}

// --- entry points ---------------------------------------------------------------

Task<> serve_http1(net::Socket& socket, const App& app, const HttpOptions& options) {
  Http1Conn conn(socket, options);
  co_await conn.run(app);
}

net::Handler make_handler(App app, HttpOptions options) {
  struct State {
    App app;
    HttpOptions options;
  };
  auto state = std::make_shared<State>(State{std::move(app), options});
  return [state](net::Socket& s) { return serve_http1(s, state->app, state->options); };
}

}  // namespace atl::http
