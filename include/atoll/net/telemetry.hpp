#pragma once
// Telemetry: hooks a server calls at the edges of its life and its
// connections'. A server without a subscriber pays one null check per event.
#include <atoll/net/address.hpp>

#include <cstdint>
#include <exception>
#include <string_view>

namespace atl::net {

/// What a connection hook is told about the connection.
struct ConnectionEvent {
  std::uint64_t id;  // unique per server
  unsigned loop;     // the loop that owns it
  const PeerAddress* peer;
  bool tls;
  std::int64_t duration_ms = 0;  // stop and exception only
  std::uint64_t bytes_in = 0;    // stop only
  std::uint64_t bytes_out = 0;   // stop only
};

/// Subclass and override what you need; calls come from the loops' threads,
/// concurrently, so implementations must be thread-safe.
class Telemetry {
 public:
  virtual ~Telemetry() = default;
  virtual void listener_started(const Endpoint&) {}
  virtual void listener_stopped(const Endpoint&) {}
  virtual void connection_started(const ConnectionEvent&) {}
  virtual void connection_stopped(const ConnectionEvent&) {}
  /// The handler threw: `what` is the exception's message.
  virtual void connection_exception(const ConnectionEvent&, std::string_view /*what*/) {}
  /// accept(2) failed with `error` (errno); the server backs off and goes on.
  virtual void accept_error(const Endpoint&, int /*error*/) {}
};

}  // namespace atl::net
