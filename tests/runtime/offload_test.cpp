// offload(fn): blocking work on the pool, resumption on the loop.
#include <atoll/runtime/offload.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using atl::Task;
using atl::runtime::BlockingPool;
using atl::runtime::Loop;
using atl::runtime::offload;

TEST(Offload, RunsOnAnotherThreadAndResumesOnTheLoopThread) {
  Loop loop;
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id ran_on, resumed_on;
  auto t = [&]() -> Task<> {
    co_await offload([&] { ran_on = std::this_thread::get_id(); });
    resumed_on = std::this_thread::get_id();
  };
  loop.run_until_complete(t());
  EXPECT_NE(ran_on, std::thread::id{});
  EXPECT_NE(ran_on, loop_thread);
  EXPECT_EQ(resumed_on, loop_thread);
}

TEST(Offload, ReturnsTheFunctionsValue) {
  Loop loop;
  auto t = []() -> Task<std::string> {
    int n = co_await offload([] { return 6 * 7; });
    auto p = co_await offload([] { return std::make_unique<int>(5); });  // move-only
    std::string s = co_await offload([n] { return std::string(std::size_t(n), 'x'); });
    co_return s + std::to_string(*p);
  };
  EXPECT_EQ(loop.run_until_complete(t()), std::string(42, 'x') + "5");
}

TEST(Offload, PropagatesExceptions) {
  Loop loop;
  auto t = []() -> Task<std::string> {
    try {
      co_await offload([]() -> int { throw std::runtime_error("disk on fire"); });
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(loop.run_until_complete(t()), "disk on fire");
}

TEST(Offload, ExceptionsEscapeToASpawnedTaskAndAreCounted) {
  Loop loop;
  auto t = []() -> Task<> { co_await offload([] { throw std::logic_error("bad"); }); };
  loop.spawn(t());
  // The failed task reports through the loop once the pool posts it back.
  for (int i = 0; i < 5000 && loop.live_tasks() > 0; ++i)
    loop.run_until_complete([]() -> Task<> { co_await atl::runtime::sleep_for(1); }());
  EXPECT_EQ(loop.live_tasks(), 0u);
  EXPECT_EQ(loop.task_failures(), 1u);
}

TEST(Offload, ManyConcurrentCallsOnASmallPool) {
  // 500 tasks share 4 threads: each result must come back to its own task.
  BlockingPool pool(4);
  Loop loop;
  std::atomic<int> concurrent{0}, peak{0};
  long long sum = 0;
  int done = 0;
  auto one = [&](int i) -> Task<> {
    int r = co_await offload(
        [&, i] {
          int now = ++concurrent;
          int p = peak.load();
          while (now > p && !peak.compare_exchange_weak(p, now)) {
          }
          std::this_thread::yield();
          --concurrent;
          return i * 2;
        },
        pool);
    sum += r;
    ++done;
  };
  for (int i = 0; i < 500; ++i) loop.spawn(one(i));
  loop.run_until_complete([&]() -> Task<> {
    while (done < 500) co_await atl::runtime::sleep_for(1);
  }());
  EXPECT_EQ(done, 500);
  EXPECT_EQ(sum, 2LL * (499 * 500 / 2));
  EXPECT_LE(peak.load(), 4);
}

TEST(Offload, ALoopKeepsServingWhileWorkIsOffloaded) {
  Loop loop;
  std::atomic<bool> release{false};
  int ticks = 0;
  bool offloaded_done = false;
  auto slow = [&]() -> Task<> {
    co_await offload([&] {
      while (!release.load()) std::this_thread::yield();
    });
    offloaded_done = true;
  };
  auto ticker = [&]() -> Task<> {
    // The loop is free while the pool thread spins: these sleeps complete.
    for (int i = 0; i < 5; ++i) {
      co_await atl::runtime::sleep_for(2);
      ++ticks;
    }
    release = true;
  };
  loop.spawn(slow());
  loop.run_until_complete(ticker());
  loop.run_until_complete([&]() -> Task<> {
    while (!offloaded_done) co_await atl::runtime::sleep_for(1);
  }());
  EXPECT_EQ(ticks, 5);
  EXPECT_TRUE(offloaded_done);
}

TEST(BlockingPool, DestructorRunsQueuedJobsThenJoins) {
  std::atomic<int> ran{0};
  {
    BlockingPool pool(1);
    std::atomic<bool> go{false};
    pool.submit([&] {
      while (!go.load()) std::this_thread::yield();
      ++ran;
    });
    for (int i = 0; i < 10; ++i) pool.submit([&] { ++ran; });
    EXPECT_GE(pool.queued(), 9u);
    go = true;
  }
  EXPECT_EQ(ran.load(), 11);
}
