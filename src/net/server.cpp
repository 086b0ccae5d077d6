#include <atoll/net/server.hpp>
#include <atoll/runtime/frame_allocator.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/loop.hpp>
#include <atoll/runtime/stop.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace atl::net {

using runtime::Task;

namespace {

// Accepts per wake before yielding to the connections just accepted: keeps a
// connection storm from starving the requests already in flight.
constexpr int accepts_per_turn = 64;
// Back-off after EMFILE/ENFILE/ENOBUFS: long enough to let connections close,
// short enough that clients waiting in the backlog barely notice.
constexpr std::int64_t accept_backoff_ms = 100;

// One live connection: its place in its loop's list and its description for
// the watchdog. Lives in the connection task's frame.

struct AcceptorTag final : runtime::TaskTag {
  std::string what;
  void describe(std::string& out) const override { out = what; }
};

[[noreturn]] void fail(const std::string& what, int err) {
  throw std::system_error(err, std::generic_category(), what);
}

// A Unix socket path left by a process that died is removed; one that a
// live server still answers on is an error, as with a TCP port in use.
void clear_stale_unix_socket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode))
    throw std::runtime_error("cannot listen on unix:" + path +
                             ": the path exists and is not a socket");
  Endpoint ep = Endpoint::unix_path(path);
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool alive = probe >= 0 && ::connect(probe, ep.data(), ep.size()) == 0;
  if (probe >= 0) ::close(probe);
  if (alive)
    throw std::runtime_error("cannot listen on unix:" + path + ": another server answers there");
  ::unlink(path.c_str());
}

// Waits for a listening socket to become readable, or for the drain.
struct ListenerWait {
  runtime::IoWatch& w;
  bool await_ready() const noexcept { return w.readable; }
  void await_suspend(std::coroutine_handle<> h) {
    w.reader = {h, runtime::Loop::current()->current_tag()};
  }
  void await_resume() const noexcept {}
};

}  // namespace

int open_listener(const Endpoint& ep, int backlog, bool reuseport) {
  if (ep.is_unix()) clear_stale_unix_socket(ep.host());
  int fd = ::socket(ep.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket() for " + ep.to_string(), errno);
  int one = 1;
  if (!ep.is_unix()) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
      int e = errno;
      ::close(fd);
      fail("SO_REUSEPORT on " + ep.to_string(), e);
    }
    // [::] then means IPv6 only, so 0.0.0.0 can be bound beside it.
    if (ep.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (::bind(fd, ep.data(), ep.size()) < 0) {
    int e = errno;
    ::close(fd);
    fail("cannot listen on " + ep.to_string() +
             (e == EADDRINUSE ? " (another process is using it)" : ""),
         e);
  }
  if (::listen(fd, backlog) < 0) {
    int e = errno;
    ::close(fd);
    fail("listen() on " + ep.to_string(), e);
  }
  return fd;
}

// One live connection, and all that it costs at rest: its socket, its place
// in the loop's list, and its root-task link. The handler's own coroutine
// frame is the connection's task ("process"); no wrapper coroutine sits
// above it, because an idle connection pays for every frame it keeps.
struct Server::ConnState final : runtime::TaskTag, runtime::RootLink {
  ConnState(Server& s, LoopState& l, int fd, const sockaddr* peer, socklen_t len,
            ConnSignals* signals)
      : sock(fd, peer, len, signals), server(&s), ls(&l) {}
  void describe(std::string& out) const override {
    out = fmt::format("connection #{} from {}", id, sock.peer().to_string());
  }
  // From the frame slabs: exact 16-byte classes, no allocator header.
  static void* operator new(std::size_t size) { return runtime::allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept {
    runtime::deallocate_frame(p, size);
  }
  Socket sock;
  Server* server;
  LoopState* ls;
  ConnState* prev_conn = nullptr;
  ConnState* next_conn = nullptr;
  std::uint64_t id = 0;
  std::int64_t started_ms = 0;
};

struct Server::LoopState {
  unsigned index = 0;
  std::unique_ptr<runtime::Loop> loop;
  std::thread thread;
  std::vector<int> listen_fds;
  std::vector<Endpoint> listen_eps;
  std::vector<std::unique_ptr<runtime::IoWatch>> listen_watches;
  std::vector<AcceptorTag> acceptor_tags;
  ConnSignals signals;
  ConnState* conns = nullptr;
  std::atomic<std::size_t> connections{0};
  std::vector<runtime::Waiter> paused_acceptors;
  bool draining = false;
  std::int64_t last_accept_error_log = 0;
};

Server::Server(ServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

Server::~Server() { stop(); }

std::vector<Endpoint> Server::endpoints() const { return endpoints_; }

void Server::open_listeners() {
  unsigned n = options_.loops ? options_.loops : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    auto ls = std::make_unique<LoopState>();
    ls->index = i;
    ls->loop = std::make_unique<runtime::Loop>(i);
    ls->loop->set_lag_threshold(options_.lag_threshold_ms);
    ls->loop->set_lag_probe(options_.lag_probe_ms);
    loops_.push_back(std::move(ls));
  }
  auto add = [&](LoopState& ls, int fd, const Endpoint& ep) {
    ls.listen_fds.push_back(fd);
    ls.listen_eps.push_back(ep);
  };
  if (!options_.inherited_listeners.empty()) {
    for (int fd : options_.inherited_listeners) {
      Endpoint ep = Endpoint::local_of(fd);
      if (!ep.valid())
        fail("inherited descriptor " + std::to_string(fd) + " is not a socket", errno);
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      endpoints_.push_back(ep);
      if (!port_) port_ = ep.port();
      for (auto& ls : loops_) add(*ls, ::dup(fd), ep);
    }
    return;
  }
  std::uint16_t port = options_.port;
  for (const auto& addr : options_.bind) {
    Endpoint ep = Endpoint::ip(addr, port);
    for (auto& ls : loops_) {
      int fd = open_listener(ep, options_.backlog, true);
      if (ep.port() == 0) {
        // The first listener picked a free port: the other loops join it.
        ep = Endpoint::local_of(fd);
        port = ep.port();
      }
      add(*ls, fd, ep);
    }
    endpoints_.push_back(ep);
    if (!port_) port_ = ep.port();
  }
  if (!options_.unix_path.empty()) {
    // One Unix listener, on loop 0: AF_UNIX has no SO_REUSEPORT balancing.
    Endpoint ep = Endpoint::unix_path(options_.unix_path);
    add(*loops_[0], open_listener(ep, options_.backlog, false), ep);
    bound_unix_ = true;
    endpoints_.push_back(ep);
  }
  if (endpoints_.empty())
    throw std::invalid_argument("server: nothing to listen on (no bind address and no Unix path)");
}

void Server::start() {
  if (started_.exchange(true)) throw std::logic_error("server: start() called twice");
  // OpenSSL writes with write(2), and sendfile(2) has no MSG_NOSIGNAL: a
  // peer that goes away mid-write would kill the process with SIGPIPE. A
  // process that chose its own SIGPIPE handler keeps it.
  struct sigaction old {};
  if (sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
    std::signal(SIGPIPE, SIG_IGN);
  // Use every descriptor the hard limit allows (as nginx's worker_rlimit_nofile).
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  max_connections_ = options_.max_connections;
  if (!max_connections_) {
    std::size_t fds = rl.rlim_cur > 128 ? std::size_t(rl.rlim_cur) - 64 : 64;
    max_connections_ = std::min<std::size_t>(fds, 16384);
  }
  if (options_.tls) tls_ = std::make_unique<TlsContext>(*options_.tls);
  try {
    open_listeners();
  } catch (...) {
    for (auto& ls : loops_)
      for (int fd : ls->listen_fds) ::close(fd);
    loops_.clear();
    throw;
  }
  for (auto& ls : loops_) {
    LoopState* p = ls.get();
    p->thread = std::thread([this, p] { run_loop(*p); });
  }
}

void Server::run_loop(LoopState& ls) {
  for (std::size_t i = 0; i < ls.listen_fds.size(); ++i) {
    auto w = std::make_unique<runtime::IoWatch>();
    w->fd = ls.listen_fds[i];
    if (!ls.loop->watch(*w))
      log::error("loop {}: cannot watch listener {}", ls.index, ls.listen_eps[i].to_string());
    ls.listen_watches.push_back(std::move(w));
  }
  ls.acceptor_tags.resize(ls.listen_fds.size());
  for (std::size_t i = 0; i < ls.listen_fds.size(); ++i) {
    ls.acceptor_tags[i].what = "acceptor for " + ls.listen_eps[i].to_string();
    ls.loop->spawn(accept_loop(ls, i), &ls.acceptor_tags[i]);
  }
  ls.loop->run();
  // Tasks still alive here were aborted and did not finish in time: destroy
  // them (closing their sockets) on this thread.
  ls.loop->destroy_tasks();
  for (std::size_t i = 0; i < ls.listen_fds.size(); ++i) {
    if (ls.listen_fds[i] >= 0) ::close(ls.listen_fds[i]);
    ls.listen_fds[i] = -1;
  }
}

bool Server::try_take_slot() noexcept {
  std::size_t c = active_.load(std::memory_order_relaxed);
  while (c < max_connections_) {
    if (active_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void Server::release_slot() {
  std::size_t before = active_.fetch_sub(1, std::memory_order_acq_rel);
  if (before == max_connections_) {
    // We were at the cap: acceptors may be paused on any loop.
    for (auto& ls : loops_) {
      LoopState* p = ls.get();
      p->loop->post([p] {
        for (auto w : p->paused_acceptors) p->loop->schedule(w);
        p->paused_acceptors.clear();
      });
    }
  }
  if (before == 1 && stopped_.load()) {
    std::lock_guard lock(state_mutex_);
    state_cv_.notify_all();
  }
}

Task<> Server::accept_loop(LoopState& ls, std::size_t i) {
  runtime::Loop& loop = *ls.loop;
  runtime::IoWatch& w = *ls.listen_watches[i];
  const Endpoint& ep = ls.listen_eps[i];
  if (options_.telemetry) options_.telemetry->listener_started(ep);
  int turn = 0;
  while (!ls.draining) {
    if (!try_take_slot()) {
      // At the cap: stop accepting, so clients wait in the kernel's backlog.
      struct Park {
        LoopState& ls;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
          ls.paused_acceptors.push_back({h, ls.loop->current_tag()});
        }
        void await_resume() const noexcept {}
      };
      co_await Park{ls};
      continue;
    }
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd =
        ::accept4(w.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accepted_.fetch_add(1, std::memory_order_relaxed);
      if (!ep.is_unix()) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      start_connection(ls, fd, reinterpret_cast<const sockaddr*>(&peer), len);
      if (++turn >= accepts_per_turn) {
        turn = 0;
        co_await runtime::yield();
      }
      continue;
    }
    int err = errno;
    release_slot();
    if (err == EAGAIN) {
      w.readable = false;
      turn = 0;
      co_await ListenerWait{w};
      continue;
    }
    if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM) continue;
    accept_errors_.fetch_add(1, std::memory_order_relaxed);
    if (options_.telemetry) options_.telemetry->accept_error(ep, err);
    if (loop.now_ms() - ls.last_accept_error_log >= 1000) {
      ls.last_accept_error_log = loop.now_ms();
      log::error("accept on {} failed: {}; backing off {} ms and retrying{}", ep.to_string(),
                 std::strerror(err), accept_backoff_ms,
                 err == EMFILE || err == ENFILE
                     ? " (raise the descriptor limit or lower max_connections)"
                     : "");
    }
    // The pending connection stays in the backlog; retry after the back-off.
    co_await runtime::sleep_for(accept_backoff_ms, ls.signals.drain);
  }
  // The drain closed the listener and reported it (see stop()).
}

void Server::start_connection(LoopState& ls, int fd, const sockaddr* peer, socklen_t len) {
  auto* cs = new ConnState(*this, ls, fd, peer, len, &ls.signals);
  cs->id = next_id_.fetch_add(1, std::memory_order_relaxed);
  cs->started_ms = ls.loop->now_ms();
  cs->done = &Server::connection_done;
  cs->next_conn = ls.conns;
  if (ls.conns) ls.conns->prev_conn = cs;
  ls.conns = cs;
  ls.connections.fetch_add(1, std::memory_order_relaxed);
  cs->sock.set_io_timeout(options_.io_timeout_ms);
  if (ls.draining) cs->sock.notify_drain();
  // Attached before the start event, which reports whether this is TLS.
  bool ready = true;
  if (tls_) {
    if (SSL* ssl = tls_->new_session(fd)) {
      cs->sock.attach_tls(ssl);
    } else {
      ready = false;  // out of memory: drop this connection, not the server
      log::error("TLS: cannot create a session for {}", cs->sock.peer().to_string());
    }
  }
  if (options_.telemetry) options_.telemetry->connection_started(connection_event(*cs));
  Task<> task;
  if (ready) {
    try {
      task = tls_ ? tls_connection(*cs) : handler_(cs->sock);
    } catch (...) {
      // The handler threw before its coroutine began: that is its end.
      connection_done(cs, std::current_exception(), true);
      return;
    }
  }
  ls.loop->spawn(std::move(task), *cs, cs);
}

Task<> Server::tls_connection(ConnState& cs) {
  cs.sock.set_deadline(cs.ls->loop->now_ms() + options_.tls->handshake_timeout_ms);
  // A TLS client's first byte starts a handshake record (0x16). Anything
  // else is a client speaking plain text to this port: tell it so.
  for (;;) {
    char first = 0;
    IoResult p = cs.sock.peek({&first, 1});
    if (p.error == EAGAIN) {
      IoResult ready = co_await cs.sock.wait_readable();
      if (!ready) co_return;
      continue;
    }
    if (!p || p.bytes == 0) co_return;
    if (first != 0x16) {
      co_await plaintext_on_tls_port(cs);
      co_return;
    }
    break;
  }
  IoResult r = co_await cs.sock.tls_handshake();
  cs.sock.set_deadline(0);
  if (!r) {
    log::debug("TLS handshake with {} failed: {}", cs.sock.peer().to_string(),
               r.error == ETIMEDOUT ? "timed out" : std::strerror(r.error));
    co_return;
  }
  co_await handler_(cs.sock);
}

Task<> Server::plaintext_on_tls_port(ConnState& cs) {
  log::debug("plain text from {} on a TLS port: answered and closed", cs.sock.peer().to_string());
  cs.sock.drop_tls();
  const std::string& reply = options_.tls->plaintext_reply;
  if (reply.empty()) co_return;
  IoResult w = co_await cs.sock.write(std::string_view(reply));
  if (!w) co_return;
  // Read (and drop) what the client sent until it closes, for at most a
  // second: closing with its request unread would reset the connection,
  // and the client might lose our answer.
  cs.sock.shutdown_write();
  cs.sock.set_deadline(cs.ls->loop->now_ms() + 1000);
  char sink[4096];
  for (std::size_t total = 0; total < 64 * 1024;) {
    IoResult r = co_await cs.sock.read(sink);
    if (!r || r.bytes == 0) break;
    total += r.bytes;
  }
}

ConnectionEvent Server::connection_event(const ConnState& cs) const {
  ConnectionEvent e{cs.id, cs.ls->index, &cs.sock.peer(), cs.sock.is_tls()};
  e.duration_ms = cs.ls->loop->now_ms() - cs.started_ms;
  e.bytes_in = cs.sock.bytes_in();
  e.bytes_out = cs.sock.bytes_out();
  return e;
}

// The connection's task has ended (or was destroyed at teardown): report an
// exception, close, and give the slot back.
void Server::connection_done(runtime::RootLink* link, std::exception_ptr error, bool) {
  auto* cs = static_cast<ConnState*>(link);
  Server& s = *cs->server;
  LoopState& ls = *cs->ls;
  Telemetry* t = s.options_.telemetry;
  if (error) {
    s.exceptions_.fetch_add(1, std::memory_order_relaxed);
    std::string what = "non-standard exception";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log::warn("handler failed on connection #{} from {}: {}", cs->id, cs->sock.peer().to_string(),
              what);
    if (t) t->connection_exception(s.connection_event(*cs), what);
  }
  if (t) t->connection_stopped(s.connection_event(*cs));
  cs->sock.close();
  if (cs->prev_conn)
    cs->prev_conn->next_conn = cs->next_conn;
  else
    ls.conns = cs->next_conn;
  if (cs->next_conn) cs->next_conn->prev_conn = cs->prev_conn;
  ls.connections.fetch_sub(1, std::memory_order_relaxed);
  delete cs;
  s.release_slot();
}

std::size_t Server::stop() {
  if (!started_.load() || stopped_.exchange(true)) return 0;
  // 1. Close the gate: stop accepting and tell every connection.
  for (auto& ls : loops_) {
    LoopState* p = ls.get();
    p->loop->post([this, p] {
      p->draining = true;
      // Closing the listeners makes the kernel refuse new connects at once,
      // instead of completing handshakes nobody will accept.
      for (std::size_t i = 0; i < p->listen_watches.size(); ++i) {
        runtime::IoWatch& w = *p->listen_watches[i];
        if (w.reader) p->loop->schedule(std::exchange(w.reader, {}));
        if (w.fd < 0) continue;
        p->loop->unwatch(w);
        ::close(w.fd);
        w.fd = -1;
        p->listen_fds[i] = -1;
        if (options_.telemetry) options_.telemetry->listener_stopped(p->listen_eps[i]);
      }
      for (auto wt : p->paused_acceptors) p->loop->schedule(wt);
      p->paused_acceptors.clear();
      p->signals.drain.request();
      for (ConnState* c = p->conns; c; c = c->next_conn) c->sock.notify_drain();
      {
        std::lock_guard lock(state_mutex_);
        ++gates_closed_;
      }
      state_cv_.notify_all();
    });
  }
  // 2. Wait until every loop has closed its gate (a connection accepted just
  // before counts as in flight) and in-flight work is done, on all loops at
  // once, up to the deadline.
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.drain_timeout_ms);
  std::size_t aborted = 0;
  {
    std::unique_lock lock(state_mutex_);
    state_cv_.wait_until(lock, deadline,
                         [this] { return gates_closed_ == loops_.size() && active_.load() == 0; });
    aborted = active_.load();
  }
  // 3. Abort the stragglers and give them a moment to unwind.
  if (aborted) {
    log::warn("drain deadline ({} ms) passed with {} connection(s) open; closing them",
              options_.drain_timeout_ms, aborted);
    for (auto& ls : loops_) {
      LoopState* p = ls.get();
      p->loop->post([p] {
        p->signals.abort.request();
        for (ConnState* c = p->conns; c; c = c->next_conn) c->sock.cancel();
      });
    }
    // Aborted tasks see ECANCELED at their next I/O; one second is plenty.
    std::unique_lock lock(state_mutex_);
    state_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return active_.load() == 0; });
  }
  // 4. Stop the loops; whatever still runs is destroyed with them.
  for (auto& ls : loops_) ls->loop->stop();
  for (auto& ls : loops_)
    if (ls->thread.joinable()) ls->thread.join();
  // Only a path this server bound: not one that refused it (a live server's,
  // or a file that is not a socket), nor one it inherited.
  if (bound_unix_) ::unlink(options_.unix_path.c_str());
  {
    std::lock_guard lock(state_mutex_);
    finished_ = true;
    state_cv_.notify_all();
  }
  return aborted;
}

void Server::wait() {
  std::unique_lock lock(state_mutex_);
  state_cv_.wait(lock, [this] { return finished_; });
}

ServerInfo Server::info() const {
  ServerInfo info;
  for (auto& ls : loops_) {
    info.connections.push_back(ls->connections.load(std::memory_order_relaxed));
    info.loop_stalls += ls->loop->stalls();
    info.loop_lag_ms.push_back(ls->loop->lag_ms());
  }
  info.accepted = accepted_.load();
  info.handler_exceptions = exceptions_.load();
  info.accept_errors = accept_errors_.load();
  return info;
}

}  // namespace atl::net
