// StopSource and StoppableSleep: drain and abort signals for tasks.
#include <atoll/runtime/clock.hpp>
#include <atoll/runtime/stop.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include "support/test_support.hpp"

using atl::Task;
using atl::runtime::Loop;
using atl::runtime::sleep_for;
using atl::runtime::StopSource;
using atl::runtime::TimerNode;
using atl::test::Stopwatch;

TEST(StopSource, StoppableSleepIsCutShortByRequest) {
  Loop loop;
  StopSource stop;
  bool full_time = true;
  double took = 0;
  auto sleeper = [&]() -> Task<> {
    Stopwatch sw;
    full_time = co_await sleep_for(10'000, stop);
    took = sw.elapsed_ms();
  };
  auto stopper = [&]() -> Task<> {
    co_await sleep_for(30);
    stop.request();
  };
  loop.spawn(sleeper());
  loop.run_until_complete(stopper());
  // The stopper's own frame ended; let the sleeper run its last step.
  loop.run_until_complete([]() -> Task<> { co_await atl::runtime::yield(); }());
  EXPECT_FALSE(full_time);
  EXPECT_GE(took, 30.0);
  EXPECT_LT(took, 5'000.0);
  EXPECT_EQ(loop.live_tasks(), 0u);
}

TEST(StopSource, StoppableSleepRunsItsFullTimeWithoutRequest) {
  Loop loop;
  StopSource stop;
  auto sleeper = [&]() -> Task<std::pair<bool, double>> {
    Stopwatch sw;
    bool full = co_await sleep_for(40, stop);
    co_return std::pair{full, sw.elapsed_ms()};
  };
  auto [full, took] = loop.run_until_complete(sleeper());
  EXPECT_TRUE(full);
  EXPECT_GE(took, 40.0);
  EXPECT_FALSE(stop.requested());
}

TEST(StopSource, AlreadyRequestedSleepReturnsAtOnce) {
  Loop loop;
  StopSource stop;
  auto t = [&]() -> Task<bool> {
    stop.request();
    co_return co_await sleep_for(10'000, stop);
  };
  Stopwatch sw;
  EXPECT_FALSE(loop.run_until_complete(t()));
  EXPECT_LT(sw.elapsed_ms(), 1'000.0);
}

TEST(StopSource, RequestWakesEveryWaiter) {
  Loop loop;
  StopSource stop;
  int woken = 0;
  auto waiter = [&]() -> Task<> {
    co_await stop.wait();
    ++woken;
  };
  for (int i = 0; i < 10; ++i) loop.spawn(waiter());
  auto t = [&]() -> Task<> {
    co_await sleep_for(5);
    EXPECT_EQ(woken, 0);
    stop.request();
    stop.request();  // a second request is a no-op
    co_await sleep_for(1);
  };
  loop.run_until_complete(t());
  EXPECT_EQ(woken, 10);
  EXPECT_TRUE(stop.requested());
}

TEST(StopSource, DestroyedWaiterUnlinksItself) {
  // A task destroyed while awaiting the source must not be resumed by a
  // later request (its node would dangle in the list).
  StopSource stop;
  int resumed = 0;
  {
    Loop loop;
    auto waiter = [&]() -> Task<> {
      co_await stop.wait();
      ++resumed;
    };
    for (int i = 0; i < 3; ++i) loop.spawn(waiter());
    auto survivor = [&]() -> Task<> {
      co_await stop.wait();
      ++resumed;
    };
    loop.run_until_complete([]() -> Task<> { co_await sleep_for(1); }());
    loop.destroy_tasks();  // the three waiters are gone
    loop.spawn(survivor());
    loop.run_until_complete([&]() -> Task<> {
      co_await sleep_for(1);
      stop.request();
      co_await sleep_for(1);
    }());
  }
  EXPECT_EQ(resumed, 1);
}

TEST(StopSource, RequestAndTimerInTheSameIterationResumeTheSleeperOnce) {
  // The stop is requested by a timer that fires in the same batch as the
  // sleep's own timer: the sleeper must be resumed once, not twice (a second
  // resumption would run it past its next suspension point).
  Loop loop;
  StopSource stop, never;
  int step = 0;
  bool full_time = true;
  auto sleeper = [&]() -> Task<> {
    full_time = co_await sleep_for(10, stop);
    step = 1;
    co_await never.wait();  // nobody requests this
    step = 2;
  };
  TimerNode requester;
  requester.owner = &stop;
  requester.fire = [](TimerNode* n) { static_cast<StopSource*>(n->owner)->request(); };
  auto blocker = [&]() -> Task<> {
    // Fires first (earlier deadline), then the sleep's timer in the same batch.
    loop.arm(requester, atl::runtime::monotonic_ms() + 1);
    ::usleep(40'000);
    co_return;
  };
  loop.spawn(sleeper());
  loop.spawn(blocker());
  loop.run_until_complete([]() -> Task<> { co_await sleep_for(60); }());
  EXPECT_FALSE(full_time);
  EXPECT_EQ(step, 1) << "the sleeper was resumed twice";
  loop.destroy_tasks();
}
