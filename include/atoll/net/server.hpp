#pragma once
// Server: listens, accepts and runs one handler task per connection.
//
// atoll's Thousand Island. Each loop (thread) has its own listening socket
// per address (SO_REUSEPORT), so a stall in one loop does not stop the others
// from accepting; a connection lives and dies on the loop that accepted it.
//
// Options, their defaults, and what each defends against:
//
// | option              | default        | why                                                   |
// |---------------------|----------------|-------------------------------------------------------|
// | bind                | {"127.0.0.1"}  | nothing is exposed beyond the machine until asked     |
// | port                | 0              | 0 picks a free port; port() reports it                |
// | unix_path           | ""             | also (or only, with bind empty) listen on a Unix socket|
// | tls                 | none           | certificate, key, ALPN, SNI; handshake timeout 10 s   |
// | loops               | 0 = cores      | one loop per core: shared-nothing, no locks           |
// | backlog             | 1024           | absorbs bursts and holds clients while at the cap     |
// | max_connections     | 0 = auto       | descriptors are finite: auto = RLIMIT_NOFILE - 64,    |
// |                     |                | at most 16384. At the cap accept pauses; clients wait |
// |                     |                | in the backlog and are served later, never dropped    |
// | io_timeout_ms       | 60000          | a peer that stops reading or writing frees its slot   |
// | drain_timeout_ms    | 10000          | stop() finishes in-flight work, but not forever       |
// | lag_threshold_ms    | 100            | watchdog: a handler holding its loop this long is named|
// | lag_probe_ms        | 500            | how often each loop measures its lag (info().loop_lag)|
// | telemetry           | nullptr        | hooks; free when unset                                |
#include <atoll/net/address.hpp>
#include <atoll/net/socket.hpp>
#include <atoll/net/telemetry.hpp>
#include <atoll/net/tls.hpp>
#include <atoll/runtime/task.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace atl::net {

struct ServerOptions {
  std::vector<std::string> bind = {"127.0.0.1"};  // IPv4 or IPv6 addresses
  std::uint16_t port = 0;
  std::string unix_path;
  std::optional<TlsOptions> tls;
  unsigned loops = 0;
  int backlog = 1024;
  std::size_t max_connections = 0;
  std::int64_t io_timeout_ms = 60'000;
  std::int64_t drain_timeout_ms = 10'000;
  std::int64_t lag_threshold_ms = 100;
  std::int64_t lag_probe_ms = 500;
  Telemetry* telemetry = nullptr;
  /// Listening descriptors to adopt instead of binding (inherited from a
  /// supervisor or systemd). Each is shared by every loop.
  std::vector<int> inherited_listeners;
};

/// Opens a non-blocking listening socket (SO_REUSEADDR; SO_REUSEPORT when
/// `reuseport`; IPv6 sockets are IPv6-only; a Unix socket's path left by a
/// dead server is removed first). Throws std::system_error naming the
/// address. A supervisor uses it to make listeners its workers inherit.
int open_listener(const Endpoint& endpoint, int backlog, bool reuseport);

/// A connection handler: a coroutine that owns its connection until it returns.
using Handler = std::function<runtime::Task<>(Socket&)>;

/// Live counts, one entry per loop.
struct ServerInfo {
  std::vector<std::size_t> connections;
  std::uint64_t accepted = 0;
  std::uint64_t handler_exceptions = 0;
  std::uint64_t accept_errors = 0;
  std::uint64_t loop_stalls = 0;
  /// Per loop: the worst lateness of its lag probe over the last 20-40
  /// probes (ServerOptions::lag_probe_ms: 10-20 s by default), in ms.
  std::vector<std::int64_t> loop_lag_ms;
  std::int64_t max_lag_ms() const {
    std::int64_t m = 0;
    for (auto l : loop_lag_ms) m = l > m ? l : m;
    return m;
  }
  std::size_t total() const {
    std::size_t n = 0;
    for (auto c : connections) n += c;
    return n;
  }
};

class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();  // stops (drains) if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listener and starts the loops (and ignores SIGPIPE unless
  /// the process has its own handler). Throws std::system_error or
  /// std::runtime_error naming the address when a listener cannot be made.
  void start();
  /// The TCP port actually bound (useful with port 0).
  std::uint16_t port() const noexcept { return port_; }
  /// Every bound address ("127.0.0.1:8080", "unix:/run/x.sock").
  std::vector<Endpoint> endpoints() const;

  /// Drains: stops accepting, tells every connection (sockets waiting idle
  /// with wake_on_drain are woken), waits up to drain_timeout_ms for all of
  /// them on all loops at once, then aborts what is left and stops the loops.
  /// Returns the number of connections that had to be aborted.
  std::size_t stop();
  /// Blocks until another thread has called stop().
  void wait();

  ServerInfo info() const;
  const ServerOptions& options() const noexcept { return options_; }
  /// The TLS state (to change SNI certificates while serving), or null.
  TlsContext* tls() const noexcept { return tls_.get(); }

  struct LoopState;  // private, per loop

 private:
  void open_listeners();
  void run_loop(LoopState& ls);
  runtime::Task<> accept_loop(LoopState& ls, std::size_t listener);
  struct ConnState;
  void start_connection(LoopState& ls, int fd, const sockaddr* peer, socklen_t len);
  runtime::Task<> tls_connection(ConnState& cs);
  runtime::Task<> plaintext_on_tls_port(ConnState& cs);
  ConnectionEvent connection_event(const ConnState& cs) const;
  static void connection_done(runtime::RootLink* link, std::exception_ptr error, bool finished);
  bool try_take_slot() noexcept;
  void release_slot();
  void connection_finished();

  ServerOptions options_;
  Handler handler_;
  std::unique_ptr<TlsContext> tls_;
  std::vector<std::unique_ptr<LoopState>> loops_;
  std::vector<Endpoint> endpoints_;
  std::uint16_t port_ = 0;
  bool bound_unix_ = false;  // we made the socket at unix_path, so stop() removes it
  std::size_t max_connections_ = 0;
  std::atomic<std::size_t> active_{0};
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> exceptions_{0};
  std::atomic<std::uint64_t> accept_errors_{0};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
  bool finished_ = false;         // guarded by state_mutex_
  std::size_t gates_closed_ = 0;  // loops that stopped accepting; guarded by state_mutex_
  std::mutex state_mutex_;
  std::condition_variable state_cv_;
};

}  // namespace atl::net
