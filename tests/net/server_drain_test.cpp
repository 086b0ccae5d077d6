// Server::stop(): close the gate, finish in-flight work, close idle
// connections at once, abort stragglers at the drain deadline.
#include <atoll/net/server.hpp>

#include <gtest/gtest.h>

#include <future>
#include <string>

#include "net/handlers.hpp"
#include "support/test_support.hpp"

using namespace atl::test;

TEST(ServerDrain, FinishesInFlightWorkClosesIdleConnectionsAndRefusesNewOnes) {
  CommandLog log;
  auto server = start_server({.loops = 1, .drain_timeout_ms = 10'000}, CommandHandler{&log});
  std::uint16_t port = server->port();

  UniqueFd idle(connect_tcp(port));
  ASSERT_TRUE(send_all(idle.get(), "echo hi\n"));
  ASSERT_EQ(recv_n(idle.get(), 3), "hi\n");  // served, and now idle with wake_on_drain

  UniqueFd busy(connect_tcp(port));
  ASSERT_TRUE(send_all(busy.get(), "slow 1000\n"));
  ASSERT_TRUE(wait_until([&] { return log.slow_started == 1; }))
      << "the slow request never started";

  Stopwatch sw;
  auto stopping = std::async(std::launch::async, [&] { return server->stop(); });

  // The idle connection is closed at once, while the slow reply is still
  // being prepared.
  EXPECT_TRUE(wait_closed(idle.get(), 5000)) << "the idle connection was not closed by the drain";
  double idle_closed_at = sw.elapsed_ms();
  EXPECT_FALSE(readable_within(busy.get(), 0))
      << "the slow request finished before the idle one was closed";

  // The gate is closed: with one loop, the listener went away before the
  // idle connection was told to close.
  UniqueFd late(connect_tcp(port));
  EXPECT_FALSE(late) << "a new connection was accepted by the kernel after stop() began";

  // The in-flight request completes with its full reply, then its
  // connection is closed as idle.
  EXPECT_EQ(recv_n(busy.get(), 10, 5000), "slow-done\n");
  EXPECT_TRUE(wait_closed(busy.get(), 5000));
  ASSERT_EQ(stopping.wait_for(std::chrono::seconds(8)), std::future_status::ready) << "stop() hung";
  EXPECT_EQ(stopping.get(), 0u) << "a connection had to be aborted";
  EXPECT_LT(idle_closed_at, 900.0);
  EXPECT_LT(sw.elapsed_ms(), 5000.0) << "stop() waited for the drain deadline with nothing left";
  EXPECT_EQ(log.slow_finished, 1);
  EXPECT_EQ(log.slow_aborted, 0);
}

TEST(ServerDrain, EveryLoopClosesItsListenerWhenTheDrainBegins) {
  CommandLog log;
  auto server = start_server({.loops = 2, .drain_timeout_ms = 10'000}, CommandHandler{&log});
  std::uint16_t port = server->port();
  UniqueFd busy(connect_tcp(port));
  ASSERT_TRUE(send_all(busy.get(), "slow 1500\n"));
  ASSERT_TRUE(wait_until([&] { return log.slow_started == 1; }));
  auto stopping = std::async(std::launch::async, [&] { return server->stop(); });
  // While the drain waits for the slow request, every new connect is refused
  // (it may take the loops a moment to hear of the drain).
  EXPECT_TRUE(wait_until(
      [&] {
        UniqueFd probe(connect_tcp(port));
        return !probe;
      },
      1000))
      << "the listeners stayed open during the drain";
  for (int i = 0; i < 20; ++i) {
    UniqueFd probe(connect_tcp(port));
    EXPECT_FALSE(probe) << "connect " << i << " succeeded during the drain";
  }
  EXPECT_FALSE(readable_within(busy.get(), 0));
  EXPECT_EQ(recv_n(busy.get(), 10, 5000), "slow-done\n");
  ASSERT_EQ(stopping.wait_for(std::chrono::seconds(8)), std::future_status::ready);
  EXPECT_EQ(stopping.get(), 0u);
}

TEST(ServerDrain, AStragglerIsAbortedAtTheDrainDeadline) {
  CommandLog log;
  auto server = start_server({.drain_timeout_ms = 500}, CommandHandler{&log});
  UniqueFd straggler(connect_tcp(server->port()));
  ASSERT_TRUE(send_all(straggler.get(), "slow 10000\n"));
  ASSERT_TRUE(wait_until([&] { return log.slow_started == 1; }));

  Stopwatch sw;
  std::size_t aborted = server->stop();
  double took = sw.elapsed_ms();
  EXPECT_EQ(aborted, 1u);
  EXPECT_GE(took, 490.0) << "stop() gave up before the drain deadline";
  EXPECT_LT(took, 3000.0) << "stop() waited far past the drain deadline";
  EXPECT_TRUE(wait_closed(straggler.get(), 2000)) << "the straggler's connection stayed open";
  EXPECT_EQ(log.slow_aborted, 1) << "the handler's sleep was not cut short by the abort signal";
  EXPECT_EQ(log.slow_finished, 0);
  EXPECT_EQ(log.connections_ended, 1);
}

TEST(ServerDrain, AHandlerIgnoringTheSignalsIsDestroyedWithItsLoop) {
  // A handler that sleeps without watching the abort signal still cannot
  // hold stop() hostage: its task is destroyed when the loop stops.
  std::atomic<int> started{0};
  auto handler = [&started](atl::net::Socket&) -> atl::Task<> {
    ++started;
    co_await atl::runtime::sleep_for(60'000);
  };
  auto server = start_server({.drain_timeout_ms = 300}, handler);
  UniqueFd fd(connect_tcp(server->port()));
  ASSERT_TRUE(wait_until([&] { return started == 1; }));
  Stopwatch sw;
  EXPECT_EQ(server->stop(), 1u);
  EXPECT_LT(sw.elapsed_ms(), 5000.0);
  EXPECT_TRUE(wait_closed(fd.get(), 2000));
}
