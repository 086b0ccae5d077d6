#include <atoll/net/buffer.hpp>
#include <atoll/net/socket.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>

namespace atl::net {

using runtime::Task;

Socket::Socket(int fd, const sockaddr* peer, socklen_t peer_len, ConnSignals* signals)
    : loop_(runtime::Loop::current()), signals_(signals) {
  watch_.fd = fd;
  if (peer) peer_.assign(peer, peer_len);
  timer_.fire = &Socket::on_timer;
  timer_.owner = this;
  if (!loop_->watch(watch_)) {
    // Cannot happen for a fresh socket short of ENOMEM; fail every operation.
    cancelled_ = true;
  }
}

Socket::~Socket() {
  // A task still waiting here cannot be resumed into a destroyed socket; in
  // practice it is the socket's own task, being destroyed with it.
  watch_.reader = {};
  watch_.writer = {};
  close();
  if (ssl_) SSL_free(ssl_);
}

void Socket::close() noexcept {
  if (timer_.armed()) loop_->disarm(timer_);
  if (watch_.fd < 0) return;
  loop_->unwatch(watch_);
  ::close(watch_.fd);
  watch_.fd = -1;
  cancelled_ = true;
  // Another task waiting on this socket (a reader while a writer gives up)
  // learns of it with ECANCELED instead of waiting forever.
  if (watch_.reader) loop_->schedule(std::exchange(watch_.reader, {}));
  if (watch_.writer) loop_->schedule(std::exchange(watch_.writer, {}));
}

Endpoint Socket::local() const { return Endpoint::local_of(watch_.fd); }

std::string_view Socket::alpn() const noexcept {
  if (!ssl_) return {};
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return {reinterpret_cast<const char*>(p), len};
}

std::string_view Socket::server_name() const noexcept {
  if (!ssl_) return {};
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  return name ? std::string_view(name) : std::string_view();
}

// --- waiting ------------------------------------------------------------------

int Socket::precheck(bool for_write) const noexcept {
  if (cancelled_) return ECANCELED;
  if (!for_write && draining_ && wake_on_drain_) return ESHUTDOWN;
  if (deadline_ms_ && loop_->now_ms() >= deadline_ms_) return ETIMEDOUT;
  return 0;
}

void Socket::begin_wait(bool for_write, runtime::Waiter w) {
  (for_write ? watch_.writer : watch_.reader) = w;
  (for_write ? write_timed_out_ : read_timed_out_) = false;
  std::int64_t due = 0;
  if (io_timeout_ms_) due = loop_->now_ms() + io_timeout_ms_;
  if (deadline_ms_ && (!due || deadline_ms_ < due)) due = deadline_ms_;
  (for_write ? write_wait_due_ms_ : read_wait_due_ms_) = due;
  // Arm only if not armed earlier than needed: a node already due sooner
  // fires, sees the later deadline and re-arms itself (on_timer), so a read
  // loop re-arms by storing one integer.
  if (due && (!timer_.armed() || timer_.when_ms > due)) loop_->arm(timer_, due);
}

int Socket::end_wait(bool for_write) noexcept {
  (for_write ? write_wait_due_ms_ : read_wait_due_ms_) = 0;
  bool& timed_out = for_write ? write_timed_out_ : read_timed_out_;
  if (cancelled_) return ECANCELED;
  if (timed_out) {
    timed_out = false;
    return ETIMEDOUT;
  }
  if (!for_write && draining_ && wake_on_drain_) return ESHUTDOWN;
  return 0;
}

void Socket::on_timer(runtime::TimerNode* node) {
  auto* s = static_cast<Socket*>(node->owner);
  std::int64_t now = s->loop_->now_ms();
  std::int64_t next = 0;
  // Each direction times out on its own deadline; a waiter already woken
  // (by readiness, in this same batch) has no waiter slot and is left alone.
  auto check = [&](runtime::Waiter& waiter, std::int64_t& due, bool& timed_out) {
    if (!waiter || !due) return;
    if (now >= due) {
      due = 0;
      timed_out = true;
      s->loop_->schedule(std::exchange(waiter, {}));
    } else if (!next || due < next) {
      next = due;
    }
  };
  check(s->watch_.reader, s->read_wait_due_ms_, s->read_timed_out_);
  check(s->watch_.writer, s->write_wait_due_ms_, s->write_timed_out_);
  if (next) s->loop_->arm(s->timer_, next);
}

Socket::WaitAwaiter Socket::wait(bool for_write) noexcept { return WaitAwaiter{*this, for_write}; }

void Socket::set_wake_on_drain(bool on) noexcept {
  wake_on_drain_ = on;
  // Turned on while the drain is already under way: a reader waiting now is
  // idle by the caller's own account, so it ends as notify_drain would end it.
  if (on && draining_ && watch_.reader) loop_->schedule(std::exchange(watch_.reader, {}));
}

void Socket::notify_drain() noexcept {
  draining_ = true;
  if (wake_on_drain_ && watch_.reader) loop_->schedule(std::exchange(watch_.reader, {}));
}

void Socket::cancel() noexcept {
  if (cancelled_) return;
  cancelled_ = true;
  if (watch_.fd >= 0) ::shutdown(watch_.fd, SHUT_RDWR);
  if (watch_.reader) loop_->schedule(std::exchange(watch_.reader, {}));
  if (watch_.writer) loop_->schedule(std::exchange(watch_.writer, {}));
}

// --- plain I/O ----------------------------------------------------------------

IoResult Socket::try_read(std::span<char> buf) {
  if (cancelled_) return {0, ECANCELED};
  for (;;) {
    // recv, not read: a socket call skips the VFS layer (its checks and
    // fsnotify), a few percent of the kernel's time per request here.
    ssize_t n = ::recv(watch_.fd, buf.data(), buf.size(), 0);
    if (n >= 0) {
      // A short read drained the socket (epoll(7), stream sockets): the next
      // edge will tell us when more arrives, so skip the read that would
      // only return EAGAIN. Unless the peer already closed: its EOF was
      // announced with the bytes just read and gets no edge of its own (as
      // nginx's pending_eof).
      if (std::size_t(n) < buf.size() && !watch_.peer_closed) watch_.readable = false;
      bytes_in_ += std::size_t(n);
      return {std::size_t(n), 0};
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) watch_.readable = false;
    return {0, errno};
  }
}

IoResult Socket::read_now(std::span<char> buf) {
  if (ssl_) return {0, EAGAIN};
  if (int e = precheck(false)) return {0, e};
  if (!watch_.readable) return {0, EAGAIN};
  return try_read(buf);
}

IoResult Socket::writev_now(std::span<iovec> iov) {
  if (ssl_) return {0, EAGAIN};
  if (int e = precheck(true)) return {0, e};
  return try_writev(iov);
}

Task<IoResult> Socket::read(std::span<char> buf) {
  if (ssl_) co_return co_await tls_read(buf);
  for (;;) {
    if (int e = precheck(false)) co_return IoResult{0, e};
    if (watch_.readable) {
      IoResult r = try_read(buf);
      if (r.error != EAGAIN) co_return r;
    }
    if (int e = co_await wait(false)) co_return IoResult{0, e};
  }
}

Socket::ReadableAwaiter Socket::wait_readable() noexcept {
  return ReadableAwaiter{wait(false), ssl_ && SSL_pending(ssl_) > 0};
}

IoResult Socket::try_writev(std::span<iovec> iov) {
  if (cancelled_) return {0, ECANCELED};
  // Skip leading empty buffers; writev with a zero total is a no-op anyway.
  std::size_t first = 0;
  while (first < iov.size() && iov[first].iov_len == 0) ++first;
  if (first == iov.size()) return {0, 0};
  int count = int(std::min<std::size_t>(iov.size() - first, IOV_MAX));
  for (;;) {
    // send/sendmsg, not writev: as recv above. MSG_NOSIGNAL: a peer gone
    // is an EPIPE to handle, never a SIGPIPE.
    ssize_t n;
    if (count == 1) {
      n = ::send(watch_.fd, iov[first].iov_base, iov[first].iov_len, MSG_NOSIGNAL);
    } else {
      msghdr msg{};
      msg.msg_iov = iov.data() + first;
      msg.msg_iovlen = std::size_t(count);
      n = ::sendmsg(watch_.fd, &msg, MSG_NOSIGNAL);
    }
    if (n >= 0) {
      bytes_out_ += std::size_t(n);
      std::size_t left = std::size_t(n);
      for (std::size_t i = first; i < iov.size() && left; ++i) {
        std::size_t take = std::min(left, iov[i].iov_len);
        iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + take;
        iov[i].iov_len -= take;
        left -= take;
      }
      return {std::size_t(n), 0};
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) watch_.writable = false;
    return {0, errno};
  }
}

Task<IoResult> Socket::writev(std::span<iovec> iov) {
  std::size_t total = 0;
  if (ssl_) {
    for (auto& v : iov) {
      auto r = co_await tls_write({static_cast<const char*>(v.iov_base), v.iov_len});
      if (!r) co_return IoResult{total, r.error};
      total += r.bytes;
      v.iov_len = 0;
    }
    co_return IoResult{total, 0};
  }
  for (;;) {
    bool done = true;
    for (auto& v : iov) done = done && v.iov_len == 0;
    if (done) co_return IoResult{total, 0};
    if (int e = precheck(true)) co_return IoResult{total, e};
    // Try first even without a recorded edge: a fresh socket is writable.
    IoResult r = try_writev(iov);
    if (r) {
      total += r.bytes;
      continue;
    }
    if (r.error != EAGAIN) co_return IoResult{total, r.error};
    if (int e = co_await wait(true)) co_return IoResult{total, e};
  }
}

Task<IoResult> Socket::write(std::span<const char> data) {
  iovec v{const_cast<char*>(data.data()), data.size()};
  co_return co_await writev({&v, 1});
}

Task<IoResult> Socket::sendfile(int file_fd, off_t offset, std::size_t count) {
  std::size_t total = 0;
  if (ssl_) {
    Buffer buf = Buffer::lease();
    while (total < count) {
      std::size_t want = std::min(count - total, Buffer::capacity);
      ssize_t n = ::pread(file_fd, buf.data(), want, offset + off_t(total));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) co_return IoResult{total, n < 0 ? errno : EIO};
      auto r = co_await tls_write({buf.data(), std::size_t(n)});
      if (!r) co_return IoResult{total, r.error};
      total += std::size_t(n);
    }
    co_return IoResult{total, 0};
  }
  while (total < count) {
    if (int e = precheck(true)) co_return IoResult{total, e};
    off_t off = offset + off_t(total);
    ssize_t n = ::sendfile(watch_.fd, file_fd, &off, count - total);
    if (n > 0) {
      total += std::size_t(n);
      bytes_out_ += std::size_t(n);
      continue;
    }
    if (n == 0) co_return IoResult{total, EIO};  // the file shrank under us
    if (errno == EINTR) continue;
    if (errno != EAGAIN) co_return IoResult{total, errno};
    watch_.writable = false;
    if (int e = co_await wait(true)) co_return IoResult{total, e};
  }
  co_return IoResult{total, 0};
}

bool Socket::has_pending_input() const noexcept {
  if (watch_.fd < 0) return false;
  if (ssl_ && SSL_pending(ssl_) > 0) return true;
  int n = 0;
  return ::ioctl(watch_.fd, FIONREAD, &n) == 0 && n > 0;
}

void Socket::shutdown_write() noexcept {
  if (watch_.fd < 0) return;
  if (ssl_) SSL_shutdown(ssl_);  // best effort close_notify
  ::shutdown(watch_.fd, SHUT_WR);
}

// --- TLS ----------------------------------------------------------------------
// OpenSSL does the socket I/O itself (SSL_set_fd); WANT_READ / WANT_WRITE mean
// its read or write met EAGAIN, so we clear the matching edge and wait.

void Socket::drop_tls() noexcept {
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
}

IoResult Socket::peek(std::span<char> buf) noexcept {
  ssize_t n = ::recv(watch_.fd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return IoResult{0, errno == EWOULDBLOCK ? EAGAIN : errno};
  return IoResult{std::size_t(n), 0};
}

Task<IoResult> Socket::tls_handshake() {
  for (;;) {
    ERR_clear_error();
    int rc = SSL_accept(ssl_);
    if (rc == 1) co_return IoResult{};
    int err = SSL_get_error(ssl_, rc);
    bool want_write = err == SSL_ERROR_WANT_WRITE;
    if (err != SSL_ERROR_WANT_READ && !want_write) co_return IoResult{0, EPROTO};
    (want_write ? watch_.writable : watch_.readable) = false;
    if (int e = co_await wait(want_write)) co_return IoResult{0, e};
  }
}

Task<IoResult> Socket::tls_read(std::span<char> buf) {
  for (;;) {
    if (int e = precheck(false)) co_return IoResult{0, e};
    ERR_clear_error();
    std::size_t got = 0;
    int rc = SSL_read_ex(ssl_, buf.data(), buf.size(), &got);
    if (rc == 1) {
      bytes_in_ += got;
      co_return IoResult{got, 0};
    }
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_ZERO_RETURN) co_return IoResult{0, 0};
    if (err == SSL_ERROR_SYSCALL && errno == 0)
      co_return IoResult{0, 0};  // EOF without close_notify
    bool want_write = err == SSL_ERROR_WANT_WRITE;
    if (err != SSL_ERROR_WANT_READ && !want_write)
      co_return IoResult{0, err == SSL_ERROR_SYSCALL ? errno : EPROTO};
    (want_write ? watch_.writable : watch_.readable) = false;
    if (int e = co_await wait(want_write)) co_return IoResult{0, e};
  }
}

Task<IoResult> Socket::tls_write(std::span<const char> data) {
  std::size_t total = 0;
  while (total < data.size()) {
    if (int e = precheck(true)) co_return IoResult{total, e};
    ERR_clear_error();
    std::size_t put = 0;
    int rc = SSL_write_ex(ssl_, data.data() + total, data.size() - total, &put);
    if (rc == 1) {
      total += put;
      bytes_out_ += put;
      continue;
    }
    int err = SSL_get_error(ssl_, rc);
    bool want_read = err == SSL_ERROR_WANT_READ;
    if (err != SSL_ERROR_WANT_WRITE && !want_read)
      co_return IoResult{total, err == SSL_ERROR_SYSCALL ? errno : EPROTO};
    (want_read ? watch_.readable : watch_.writable) = false;
    if (int e = co_await wait(!want_read)) co_return IoResult{total, e};
  }
  co_return IoResult{total, 0};
}

}  // namespace atl::net
