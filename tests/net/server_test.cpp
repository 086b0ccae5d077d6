// Server: echo over TCP and Unix sockets, many clients, handler faults, the
// watchdog, the connection cap and the I/O timeout — all on real loopback
// sockets, driven by blocking clients on the test thread.
#include <atoll/net/server.hpp>

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "net/handlers.hpp"
#include "support/test_support.hpp"

using namespace atl::test;
using atl::net::ServerOptions;

namespace {

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    seed = seed * 1103515245u + 12345u;
    s[i] = char(seed >> 24);
  }
  return s;
}

// Sends `data` from a second thread while this one reads the echo: a big
// echo would otherwise deadlock both sides on full socket buffers.
std::string echo_big(int fd, const std::string& data) {
  std::thread sender([&] { send_all(fd, data); });
  std::string back = recv_n(fd, data.size(), 20'000);
  sender.join();
  return back;
}

}  // namespace

TEST(Server, EchoOverTcp) {
  auto server = start_server({}, echo_handler);
  ASSERT_NE(server->port(), 0);
  ASSERT_EQ(server->endpoints().size(), 1u);
  EXPECT_EQ(server->endpoints()[0].to_string(), "127.0.0.1:" + std::to_string(server->port()));

  UniqueFd fd(connect_tcp(server->port()));
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_all(fd.get(), "hello"));
  EXPECT_EQ(recv_n(fd.get(), 5), "hello");
  // Bigger than a socket buffer and than one read buffer: partial reads,
  // partial writes and back-pressure all happen on the way.
  std::string big = pattern(4 << 20, 1);
  EXPECT_TRUE(echo_big(fd.get(), big) == big);
  EXPECT_EQ(server->info().accepted, 1u);
}

TEST(Server, EchoOverAUnixSocket) {
  std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  std::string path = dir + "/echo.sock";
  {
    auto server = start_server({.bind = {}, .unix_path = path}, echo_handler);
    ASSERT_EQ(server->endpoints().size(), 1u);
    EXPECT_EQ(server->endpoints()[0].to_string(), "unix:" + path);
    UniqueFd fd(connect_unix(path));
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), "over unix"));
    EXPECT_EQ(recv_n(fd.get(), 9), "over unix");
    std::string big = pattern(1 << 20, 2);
    EXPECT_TRUE(echo_big(fd.get(), big) == big);
    fd.reset();
    EXPECT_EQ(server->stop(), 0u);
  }
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "stop() left the socket file behind";
  ::rmdir(dir.c_str());
}

TEST(Server, AStaleUnixSocketFileIsReplaced) {
  std::string dir = make_temp_dir();
  std::string path = dir + "/stale.sock";
  {
    // A socket file left by a process that died: bound, never listened on.
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    auto ep = atl::net::Endpoint::unix_path(path);
    ASSERT_EQ(::bind(stale.get(), ep.data(), ep.size()), 0);
  }
  {
    auto server = start_server({.bind = {}, .unix_path = path}, echo_handler);
    UniqueFd fd(connect_unix(path));
    ASSERT_TRUE(fd);
    ASSERT_TRUE(send_all(fd.get(), "x"));
    EXPECT_EQ(recv_n(fd.get(), 1), "x");
    // A second server on the same live path is refused, naming the path.
    atl::net::Server second({.bind = {}, .unix_path = path}, echo_handler);
    try {
      second.start();
      ADD_FAILURE() << "a second server started on a live Unix socket";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  ::rmdir(dir.c_str());
}

TEST(Server, AThousandConcurrentClientsAreEachEchoed) {
  constexpr int clients = 1000;
  auto server = start_server({}, echo_handler);
  std::vector<UniqueFd> fds;
  fds.reserve(clients);
  for (int i = 0; i < clients; ++i) {
    fds.emplace_back(connect_tcp(server->port()));
    ASSERT_TRUE(fds.back()) << "connect " << i << " failed";
  }
  // All of them are open on the server at once.
  ASSERT_TRUE(wait_until([&] { return server->info().total() == clients; }, 20'000))
      << "server holds " << server->info().total() << " connections";
  std::vector<std::string> sent(clients), got(clients);
  for (int i = 0; i < clients; ++i) {
    sent[i] = "client " + std::to_string(i) + " says " + pattern(std::size_t(i % 200), unsigned(i));
    ASSERT_TRUE(send_all(fds[i].get(), sent[i]));
  }
  // Read every reply with poll(): one thread, 1,000 sockets.
  std::vector<pollfd> pfds(clients);
  for (int i = 0; i < clients; ++i) pfds[i] = {fds[i].get(), POLLIN, 0};
  int complete = 0;
  Stopwatch sw;
  while (complete < clients && sw.elapsed_ms() < 30'000) {
    int n = ::poll(pfds.data(), pfds.size(), 1000);
    ASSERT_GE(n, 0);
    for (int i = 0; i < clients; ++i) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t r = ::recv(pfds[i].fd, buf, sizeof buf, 0);
      ASSERT_GT(r, 0) << "client " << i << " was closed before its echo arrived";
      got[i].append(buf, std::size_t(r));
      if (got[i].size() >= sent[i].size()) {
        pfds[i].fd = -pfds[i].fd - 1;  // done: poll ignores negative descriptors
        ++complete;
      }
    }
  }
  ASSERT_EQ(complete, clients);
  for (int i = 0; i < clients; ++i) ASSERT_EQ(got[i], sent[i]) << "client " << i;
  EXPECT_EQ(server->info().accepted, std::uint64_t(clients));
  fds.clear();
  EXPECT_TRUE(wait_until([&] { return server->info().total() == 0; }, 20'000));
}

TEST(Server, AThrowingHandlerEndsOnlyItsOwnConnection) {
  CommandLog log;
  auto server = start_server({}, CommandHandler{&log});
  UniqueFd healthy(connect_tcp(server->port()));
  UniqueFd doomed(connect_tcp(server->port()));
  ASSERT_TRUE(healthy && doomed);
  ASSERT_TRUE(send_all(healthy.get(), "echo before\n"));
  EXPECT_EQ(recv_n(healthy.get(), 7), "before\n");

  ASSERT_TRUE(send_all(doomed.get(), "throw\n"));
  EXPECT_TRUE(wait_closed(doomed.get(), 5000)) << "the throwing handler's connection stayed open";
  EXPECT_TRUE(wait_until([&] { return server->info().handler_exceptions == 1; }));

  ASSERT_TRUE(send_all(healthy.get(), "echo after\n"));
  EXPECT_EQ(recv_n(healthy.get(), 6), "after\n");
  // And the server still accepts.
  UniqueFd later(connect_tcp(server->port()));
  ASSERT_TRUE(send_all(later.get(), "echo new\n"));
  EXPECT_EQ(recv_n(later.get(), 4), "new\n");
  EXPECT_EQ(server->info().handler_exceptions, 1u);
}

TEST(Server, TheWatchdogReportsABlockingHandler) {
  CommandLog log;
  auto server = start_server({.loops = 1, .lag_threshold_ms = 100}, CommandHandler{&log});
  UniqueFd fd(connect_tcp(server->port()));
  ASSERT_TRUE(send_all(fd.get(), "block 250\n"));
  EXPECT_EQ(recv_n(fd.get(), 8), "blocked\n");
  EXPECT_TRUE(wait_until([&] { return server->info().loop_stalls > 0; }));
}

TEST(Server, AHandlerThatBlocksAndEndsInOneGoIsReportedSafely) {
  // The connection's tag dies in the resumption the watchdog is timing.
  auto handler = [](atl::net::Socket&) -> atl::Task<> {
    ::usleep(150'000);
    co_return;
  };
  auto server = start_server({.loops = 1, .lag_threshold_ms = 50}, handler);
  UniqueFd fd(connect_tcp(server->port()));
  ASSERT_TRUE(fd);
  EXPECT_TRUE(wait_closed(fd.get(), 5000));
  EXPECT_TRUE(wait_until([&] { return server->info().loop_stalls > 0; }));
  // The server is still healthy.
  UniqueFd again(connect_tcp(server->port()));
  EXPECT_TRUE(wait_closed(again.get(), 5000));
}

TEST(Server, AtTheConnectionCapClientsWaitInTheBacklogAndAreServedLater) {
  auto server = start_server({.max_connections = 2}, echo_handler);
  UniqueFd first(connect_tcp(server->port()));
  UniqueFd second(connect_tcp(server->port()));
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(send_all(first.get(), "1"));
  ASSERT_TRUE(send_all(second.get(), "2"));
  EXPECT_EQ(recv_n(first.get(), 1), "1");
  EXPECT_EQ(recv_n(second.get(), 1), "2");

  // The kernel completes the third handshake (backlog), but nobody serves it.
  UniqueFd third(connect_tcp(server->port()));
  ASSERT_TRUE(third) << "the third client was refused instead of queued";
  ASSERT_TRUE(send_all(third.get(), "3"));
  EXPECT_FALSE(readable_within(third.get(), 300)) << "the third client was served above the cap";
  EXPECT_EQ(server->info().accepted, 2u);
  EXPECT_EQ(server->info().total(), 2u);

  // One of the first two leaves: the third is accepted and served.
  first.reset();
  EXPECT_EQ(recv_n(third.get(), 1, 5000), "3");
  EXPECT_EQ(server->info().accepted, 3u);
  ASSERT_TRUE(send_all(second.get(), "still"));
  EXPECT_EQ(recv_n(second.get(), 5), "still");
}

TEST(Server, TheIoTimeoutClosesAnIdleReader) {
  auto server = start_server({.io_timeout_ms = 200}, echo_handler);
  UniqueFd fd(connect_tcp(server->port()));
  Stopwatch sw;  // before sending: the server's last wait starts after it echoed
  ASSERT_TRUE(send_all(fd.get(), "awake"));
  EXPECT_EQ(recv_n(fd.get(), 5), "awake");
  EXPECT_TRUE(wait_closed(fd.get(), 5000)) << "an idle connection outlived its I/O timeout";
  EXPECT_GE(sw.elapsed_ms(), 150.0);  // the loop's clock is coarse, a few ms either way
  EXPECT_TRUE(wait_until([&] { return server->info().total() == 0; }));
}

TEST(Server, TheIoTimeoutSparesAConnectionThatKeepsTalking) {
  // Each wait is bounded, not the connection's life: a client that speaks
  // every 50 ms outlives several 500 ms timeouts (the margin absorbs a
  // loaded machine descheduling this thread).
  auto server = start_server({.io_timeout_ms = 500}, echo_handler);
  UniqueFd fd(connect_tcp(server->port()));
  Stopwatch sw;
  int round = 0;
  while (sw.elapsed_ms() < 1600) {
    std::string msg = "ping " + std::to_string(round++);
    ASSERT_TRUE(send_all(fd.get(), msg));
    ASSERT_EQ(recv_n(fd.get(), msg.size(), 5000), msg) << "after " << sw.elapsed_ms() << " ms";
    ::usleep(50'000);  // pacing, not synchronisation
  }
}

TEST(Server, StopWithNoConnectionsReturnsAtOnce) {
  auto server = start_server({.drain_timeout_ms = 10'000}, echo_handler);
  Stopwatch sw;
  EXPECT_EQ(server->stop(), 0u);
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
  EXPECT_EQ(server->stop(), 0u);  // a second stop is a no-op
}

TEST(Server, StartFailsWithAClearMessageWhenThePortIsTaken) {
  auto first = start_server({}, echo_handler);
  // Without SO_REUSEPORT on our side, the bind fails as for any other process.
  UniqueFd taker(::socket(AF_INET, SOCK_STREAM, 0));
  auto ep = atl::net::Endpoint::ip("127.0.0.1", 0);
  ASSERT_EQ(::bind(taker.get(), ep.data(), ep.size()), 0);
  ASSERT_EQ(::listen(taker.get(), 1), 0);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(taker.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  std::uint16_t port =
      atl::net::Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
  atl::net::Server second({.port = port}, echo_handler);
  try {
    second.start();
    ADD_FAILURE() << "started on a port another socket listens on";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
}

TEST(Server, ServesOnAnInheritedListenerAndLeavesItOpen) {
  // A supervisor's listening socket: the server serves on it and, when it
  // stops, leaves it listening for whoever takes over.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto ep = atl::net::Endpoint::ip("127.0.0.1", 0);
  ASSERT_EQ(::bind(listener.get(), ep.data(), ep.size()), 0);
  ASSERT_EQ(::listen(listener.get(), 16), 0);
  {
    auto server = start_server({.inherited_listeners = {listener.get()}}, echo_handler);
    ASSERT_NE(server->port(), 0);
    UniqueFd fd(connect_tcp(server->port()));
    ASSERT_TRUE(send_all(fd.get(), "inherited"));
    EXPECT_EQ(recv_n(fd.get(), 9), "inherited");
    fd.reset();
    EXPECT_EQ(server->stop(), 0u);
    // Still listening: the next owner will find this client in the backlog.
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    UniqueFd waiting(connect_tcp(server->port()));
    EXPECT_TRUE(waiting) << "stop() closed the inherited listener";
  }
}

TEST(Server, ListensOnIpv6Loopback) {
  UniqueFd probe(::socket(AF_INET6, SOCK_STREAM, 0));
  auto ep6 = atl::net::Endpoint::ip("::1", 0);
  if (!probe || ::bind(probe.get(), ep6.data(), ep6.size()) != 0)
    GTEST_SKIP() << "no IPv6 loopback here";
  probe.reset();
  auto server = start_server({.bind = {"::1", "127.0.0.1"}}, echo_handler);
  ASSERT_EQ(server->endpoints().size(), 2u);
  EXPECT_EQ(server->endpoints()[0].to_string(), "[::1]:" + std::to_string(server->port()));
  // The IPv4 listener shares the port.
  UniqueFd v4(connect_tcp(server->port()));
  ASSERT_TRUE(send_all(v4.get(), "four"));
  EXPECT_EQ(recv_n(v4.get(), 4), "four");
  UniqueFd v6(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(v6.get(), server->endpoints()[0].data(), server->endpoints()[0].size()), 0);
  ASSERT_TRUE(send_all(v6.get(), "six"));
  EXPECT_EQ(recv_n(v6.get(), 3), "six");
}
