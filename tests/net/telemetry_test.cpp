// Telemetry: a subscriber sees listeners and connections start and stop,
// with the bytes each connection moved.
#include <atoll/net/server.hpp>
#include <atoll/net/telemetry.hpp>

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "net/handlers.hpp"
#include "support/test_support.hpp"
#include "support/tls_client.hpp"

using namespace atl::test;
using atl::net::ConnectionEvent;
using atl::net::Endpoint;

namespace {

struct Recorded {
  std::uint64_t id;
  unsigned loop;
  std::string peer;
  bool tls;
  std::int64_t duration_ms;
  std::uint64_t bytes_in, bytes_out;
};

class Recorder final : public atl::net::Telemetry {
 public:
  void listener_started(const Endpoint& ep) override {
    std::lock_guard lock(mutex_);
    listeners_started.push_back(ep.to_string());
  }
  void listener_stopped(const Endpoint& ep) override {
    std::lock_guard lock(mutex_);
    listeners_stopped.push_back(ep.to_string());
  }
  void connection_started(const ConnectionEvent& e) override {
    std::lock_guard lock(mutex_);
    started.push_back(record(e));
  }
  void connection_stopped(const ConnectionEvent& e) override {
    std::lock_guard lock(mutex_);
    stopped.push_back(record(e));
  }
  void connection_exception(const ConnectionEvent& e, std::string_view what) override {
    std::lock_guard lock(mutex_);
    exceptions.push_back(record(e));
    exception_messages.emplace_back(what);
  }
  void accept_error(const Endpoint&, int) override {
    std::lock_guard lock(mutex_);
    ++accept_errors;
  }

  template <class F>
  auto with(F f) {
    std::lock_guard lock(mutex_);
    return f(*this);
  }

  std::vector<std::string> listeners_started, listeners_stopped;
  std::vector<Recorded> started, stopped, exceptions;
  std::vector<std::string> exception_messages;
  int accept_errors = 0;

 private:
  static Recorded record(const ConnectionEvent& e) {
    return {e.id,       e.loop,     e.peer ? e.peer->to_string() : "", e.tls, e.duration_ms,
            e.bytes_in, e.bytes_out};
  }
  std::mutex mutex_;
};

}  // namespace

TEST(Telemetry, ConnectionsReportStartAndStopWithBytes) {
  Recorder rec;
  auto server = start_server({.loops = 2, .telemetry = &rec}, echo_handler);
  std::string local_peer;
  {
    UniqueFd fd(connect_tcp(server->port()));
    ASSERT_TRUE(fd);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    local_peer = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len).to_string();
    ASSERT_TRUE(send_all(fd.get(), "12345"));
    ASSERT_EQ(recv_n(fd.get(), 5), "12345");
    ASSERT_TRUE(send_all(fd.get(), "678"));
    ASSERT_EQ(recv_n(fd.get(), 3), "678");
  }
  ASSERT_TRUE(
      wait_until([&] { return rec.with([](Recorder& r) { return r.stopped.size() == 1; }); }));
  rec.with([&](Recorder& r) {
    ASSERT_EQ(r.started.size(), 1u);
    const Recorded& s = r.started[0];
    const Recorded& e = r.stopped[0];
    EXPECT_EQ(s.id, e.id);
    EXPECT_EQ(s.loop, e.loop);
    EXPECT_LT(s.loop, 2u);
    EXPECT_EQ(s.peer, local_peer);
    EXPECT_FALSE(s.tls);
    EXPECT_EQ(e.bytes_in, 8u);
    EXPECT_EQ(e.bytes_out, 8u);
    EXPECT_GE(e.duration_ms, 0);
    EXPECT_TRUE(r.exceptions.empty());
    EXPECT_EQ(r.accept_errors, 0);
  });
  // One listener per loop for the one address, each reported by its own loop
  // (the other loop may not have got to it yet).
  EXPECT_TRUE(wait_until(
      [&] { return rec.with([](Recorder& r) { return r.listeners_started.size() == 2; }); }));
  server->stop();
  rec.with([](Recorder& r) { EXPECT_EQ(r.listeners_stopped.size(), 2u); });
}

TEST(Telemetry, IdsAreUniqueAcrossConnections) {
  Recorder rec;
  auto server = start_server({.telemetry = &rec}, echo_handler);
  for (int i = 0; i < 20; ++i) {
    UniqueFd fd(connect_tcp(server->port()));
    ASSERT_TRUE(send_all(fd.get(), "x"));
    ASSERT_EQ(recv_n(fd.get(), 1), "x");
  }
  ASSERT_TRUE(
      wait_until([&] { return rec.with([](Recorder& r) { return r.stopped.size() == 20; }); }));
  rec.with([](Recorder& r) {
    std::vector<std::uint64_t> ids;
    for (auto& e : r.stopped) ids.push_back(e.id);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
  });
}

TEST(Telemetry, HandlerExceptionsAreReportedWithTheirMessage) {
  Recorder rec;
  CommandLog log;
  auto server = start_server({.telemetry = &rec}, CommandHandler{&log});
  UniqueFd fd(connect_tcp(server->port()));
  ASSERT_TRUE(send_all(fd.get(), "throw\n"));
  EXPECT_TRUE(wait_closed(fd.get(), 5000));
  ASSERT_TRUE(
      wait_until([&] { return rec.with([](Recorder& r) { return r.stopped.size() == 1; }); }));
  rec.with([](Recorder& r) {
    ASSERT_EQ(r.exceptions.size(), 1u);
    EXPECT_EQ(r.exception_messages[0], "the handler was told to throw");
    EXPECT_EQ(r.exceptions[0].id, r.stopped[0].id);
    EXPECT_EQ(r.stopped[0].bytes_in, 6u);
  });
}

TEST(Telemetry, TlsConnectionsAreMarkedAndCountPlaintextBytes) {
  Recorder rec;
  atl::net::TlsOptions tls;
  tls.cert_file = cert_dir() + "/cert.pem";
  tls.key_file = cert_dir() + "/key.pem";
  auto server = start_server({.tls = tls, .telemetry = &rec}, echo_handler);
  {
    TlsClient c;
    ASSERT_TRUE(c.connect(server->port())) << c.error();
    ASSERT_TRUE(c.send("hello tls"));
    ASSERT_EQ(c.recv(9), "hello tls");
  }
  ASSERT_TRUE(
      wait_until([&] { return rec.with([](Recorder& r) { return r.stopped.size() == 1; }); }));
  rec.with([](Recorder& r) {
    EXPECT_TRUE(r.started[0].tls);
    EXPECT_TRUE(r.stopped[0].tls);
    EXPECT_EQ(r.stopped[0].bytes_in, 9u);
    EXPECT_EQ(r.stopped[0].bytes_out, 9u);
  });
}
