// HTTP/1.1 responses on the wire: the status line and headers, bodies from
// memory or by sendfile, chunked streams, 1xx, and the switch to another
// protocol.
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

// --- writing ------------------------------------------------------------------

void Http1Conn::put(std::string_view s) {
  if (!out_) out_ = net::Buffer::lease();
  std::memcpy(out_.data() + out_len_, s.data(), s.size());
  out_len_ += s.size();
}

bool Http1Conn::flush_now() {
  if (out_len_ == 0) {
    out_.release();
    return !broken_;
  }
  if (broken_) return false;
  iovec v{out_.data(), out_len_};
  auto r = sock_.writev_now({&v, 1});
  if (!r) return false;
  if (r.bytes < out_len_) {
    std::memmove(out_.data(), out_.data() + r.bytes, out_len_ - r.bytes);
    out_len_ -= r.bytes;
    return false;
  }
  out_len_ = 0;
  out_.release();
  return true;
}

Task<bool> Http1Conn::flush() {
  if (out_len_ == 0) {
    out_.release();
    co_return !broken_;
  }
  auto r = co_await sock_.write(std::span<const char>(out_.data(), out_len_));
  out_len_ = 0;
  out_.release();
  if (!r) broken_ = true;
  co_return !broken_;
}

bool Http1Conn::head_needs_flush() const {
  return head_overhead + response_headers_.wire().size() > out_space() && out_len_;
}

void Http1Conn::write_head(int status, std::int64_t content_length, bool chunked) {
  if (started_) throw std::logic_error("the response has already been started");
  if (sock_.draining()) close_ = true;
  if (chunked && http_minor_ == 0) close_ = true;  // HTTP/1.0: the close delimits the body
  // A final answer before the client was invited to send its body: it may or
  // may not send it, so where the next request starts is unknown and the
  // connection will close (finish_request). RFC 9110 §10.1.1: say so here.
  if (status >= 200 && has_body_ && !body_done_ && expect_continue_ && !continue_sent_)
    close_ = true;
  std::size_t need = head_overhead + response_headers_.wire().size();
  if (need > cap)
    throw std::length_error("response headers larger than " + std::to_string(cap - head_overhead) +
                            " bytes");
  if (!out_) out_ = net::Buffer::lease();
  char* p = out_.data() + out_len_;
  std::memcpy(p, "HTTP/1.1 ", 9);
  p += 9;
  p = put_uint(p, std::uint64_t(status));
  *p++ = ' ';
  auto reason = reason_phrase(status);
  std::memcpy(p, reason.data(), reason.size());
  p += reason.size();
  std::memcpy(p, "\r\nDate: ", 8);
  p += 8;
  auto date = http_date_now();
  std::memcpy(p, date.data(), date.size());
  p += date.size();
  *p++ = '\r';
  *p++ = '\n';
  if (content_length >= 0) {
    std::memcpy(p, "Content-Length: ", 16);
    p += 16;
    p = put_uint(p, std::uint64_t(content_length));
    *p++ = '\r';
    *p++ = '\n';
  }
  if (chunked && http_minor_ == 1) {
    std::memcpy(p, "Transfer-Encoding: chunked\r\n", 28);
    p += 28;
  }
  const std::string& extra = response_headers_.wire();
  std::memcpy(p, extra.data(), extra.size());
  p += extra.size();
  if (status != 101) {
    if (will_close()) {
      std::memcpy(p, "Connection: close\r\n", 19);
      p += 19;
    } else if (http_minor_ == 0) {
      std::memcpy(p, "Connection: keep-alive\r\n", 24);
      p += 24;
    }
  }
  *p++ = '\r';
  *p++ = '\n';
  out_len_ = std::size_t(p - out_.data());
  started_ = true;
  status_ = status;
}

Task<> Http1Conn::transport_send(int status, std::string_view body) {
  // The usual answer (head and body fit the buffer, which has room) is put
  // there by a plain call; only one that must wait gets a coroutine frame.
  bool bodiless = status == 204 || status == 304 || status < 200;
  if (head_needs_flush() || (!bodiless && !head_ && !body.empty() &&
                             head_overhead + response_headers_.wire().size() + body.size() >
                                 (out_ ? out_space() : net::Buffer::capacity)))
    return send_slow(status, body);
  write_head(status, bodiless ? -1 : std::int64_t(body.size()), false);
  sent_ = true;
  if (head_ || bodiless || body.empty() || broken_) return {};
  bytes_sent_ = body.size();
  put(body);
  return {};
}

Task<> Http1Conn::send_slow(int status, std::string_view body) {
  if (head_needs_flush()) co_await flush();
  bool bodiless = status == 204 || status == 304 || status < 200;
  write_head(status, bodiless ? -1 : std::int64_t(body.size()), false);
  sent_ = true;
  if (head_ || bodiless || body.empty() || broken_) co_return;
  bytes_sent_ = body.size();
  if (body.size() <= out_space()) {
    put(body);
    co_return;
  }
  // Large: head and body leave together in one writev.
  iovec iov[2] = {{out_.data(), out_len_}, {const_cast<char*>(body.data()), body.size()}};
  auto r = co_await sock_.writev(iov);
  out_len_ = 0;
  out_.release();
  if (!r) broken_ = true;
}

Task<> Http1Conn::transport_send_file(int status, int fd, off_t offset, std::uint64_t length) {
  if (head_needs_flush()) co_await flush();
  write_head(status, std::int64_t(length), false);
  sent_ = true;
  if (head_ || broken_ || length == 0) co_return;
  bytes_sent_ = length;
  if (length <= inline_file_limit && length <= out_space()) {
    std::size_t got = 0;
    while (got < length) {
      ssize_t n = ::pread(fd, out_.data() + out_len_ + got, length - got, offset + off_t(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The file shrank or failed under us: the promised length cannot be
        // kept, so the connection must end.
        broken_ = true;
        co_return;
      }
      got += std::size_t(n);
    }
    out_len_ += length;
    co_return;
  }
  if (!co_await flush()) co_return;
  auto r = co_await sock_.sendfile(fd, offset, length);
  if (!r) broken_ = true;
}

Task<> Http1Conn::transport_begin_stream(int status) {
  if (head_needs_flush()) co_await flush();
  write_head(status, -1, true);
  streaming_ = true;
  co_await flush();
}

Task<> Http1Conn::transport_write(std::string_view data) {
  if (!streaming_) throw std::logic_error("write_chunk() before begin_stream()");
  if (head_ || data.empty() || broken_) co_return;
  bytes_sent_ += data.size();
  if (http_minor_ == 0) {
    if (!co_await flush()) co_return;
    auto r = co_await sock_.write(std::span<const char>(data.data(), data.size()));
    if (!r) broken_ = true;
    co_return;
  }
  char size_line[24];
  auto [end, ec] = std::to_chars(size_line, size_line + 16, data.size(), 16);
  end[0] = '\r';
  end[1] = '\n';
  iovec iov[4] = {{out_ ? out_.data() : nullptr, out_len_},
                  {size_line, std::size_t(end + 2 - size_line)},
                  {const_cast<char*>(data.data()), data.size()},
                  {const_cast<char*>("\r\n"), 2}};
  auto r = co_await sock_.writev(iov);
  out_len_ = 0;
  out_.release();
  if (!r) broken_ = true;
}

Task<> Http1Conn::transport_end_stream() {
  if (!streaming_) throw std::logic_error("end_stream() before begin_stream()");
  streaming_ = false;
  sent_ = true;
  if (!head_ && http_minor_ == 1 && !broken_) put("0\r\n\r\n");
  co_await flush();
}

Task<> Http1Conn::inform(int status, const std::vector<Header>& headers) {
  if (status < 100 || status > 199 || status == 101)
    throw std::invalid_argument("inform() takes a 1xx status other than 101");
  if (started_) throw std::logic_error("inform() after the response started");
  if (http_minor_ == 0) co_return;  // HTTP/1.0 clients do not expect 1xx
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
  for (const auto& h : headers) {
    validate_header(h.name, h.value);
    head.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  head += "\r\n";
  if (head.size() > out_space()) {
    if (!co_await flush()) co_return;
  }
  if (head.size() > cap) throw std::length_error("informational headers too large");
  put(head);
  co_await flush();
}

// The connection's bytes after a switch: what the client sent after the
// request first (still in the read buffer), then the socket's.
class Http1Conn::Stream final : public Conn::ByteStream {
 public:
  explicit Stream(Http1Conn& c) : c_(c) {}
  Task<std::span<const char>> read() override {
    if (c_.in_start_ < c_.in_end_) {
      std::span<const char> early(c_.in_.data() + c_.in_start_, c_.in_end_ - c_.in_start_);
      c_.in_start_ = c_.in_end_;
      co_return early;
    }
    c_.ensure_in();
    c_.in_start_ = c_.in_end_ = 0;
    auto r = co_await c_.sock_.read({c_.in_.data(), cap});
    if (!r || r.eof()) co_return std::span<const char>{};
    co_return std::span<const char>(c_.in_.data(), r.bytes);
  }
  Task<bool> write(std::string_view data) override {
    auto r = co_await c_.sock_.write(std::span<const char>(data.data(), data.size()));
    co_return bool(r);
  }
  bool draining() const noexcept override { return c_.sock_.draining(); }
  const net::PeerAddress& peer() const noexcept override { return c_.sock_.peer(); }

 private:
  Http1Conn& c_;
};

Task<> Http1Conn::switch_protocols() {
  std::unique_ptr<PendingUpgrade> up = std::move(upgrade_);  // the handler lives here now
  response_headers_.set("Connection", "Upgrade");
  response_headers_.set("Upgrade", up->protocol);
  for (const auto& [name, value] : up->headers) response_headers_.add(name, value);
  started_ = sent_ = false;  // (upgrade() marked the exchange answered)
  if (head_needs_flush()) co_await flush();
  write_head(101, -1, false);
  sent_ = true;
  upgraded_ = true;
  if (!co_await flush()) co_return;
  // A session may sit idle for hours: no I/O timeout; a drain wakes a read.
  sock_.set_deadline(0);
  sock_.set_io_timeout(0);
  sock_.set_wake_on_drain(true);
  Stream stream(*this);
  try {
    co_await up->handler(stream);
  } catch (const std::exception& e) {
    log::warn("{} session from {} failed: {}", up->protocol, sock_.peer().to_string(), e.what());
  }
}

}  // namespace atl::http
