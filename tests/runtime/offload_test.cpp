// offload(fn): blocking work on the pool, resumption on the loop.
#include <atoll/runtime/offload.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/test_support.hpp"

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

TEST(Offload, ADestroyedTaskNeitherRunsItsQueuedJobNorIsResumed) {
  // The pool's only thread is busy; a task's job waits in the queue when the
  // task is destroyed (as a server destroys stragglers at stop). The job's
  // function, which may refer to the dead frame, must not run, and nothing
  // may be posted back for the dead task.
  BlockingPool pool(1);
  std::atomic<bool> release{false}, blocker_running{false}, sentinel{false};
  pool.submit([&] {
    blocker_running = true;
    while (!release.load()) std::this_thread::yield();
  });
  ASSERT_TRUE(atl::test::wait_until([&] { return blocker_running.load(); }));
  std::atomic<int> ran{0};
  int resumed = 0;
  Loop loop;
  auto task = [&]() -> Task<> {
    int local = 41;
    co_await offload([&] { ran = ++local; }, pool);
    ++resumed;
  };
  loop.spawn(task());
  loop.run_until_complete([]() -> Task<> { co_await atl::runtime::sleep_for(1); }());
  ASSERT_EQ(pool.queued(), 1u);
  loop.destroy_tasks();
  release = true;
  pool.submit([&] { sentinel = true; });  // runs after the orphaned job
  ASSERT_TRUE(atl::test::wait_until([&] { return sentinel.load(); }));
  // Run the loop again: a stale resumption would run the dead frame here.
  loop.run_until_complete([]() -> Task<> { co_await atl::runtime::sleep_for(5); }());
  EXPECT_EQ(ran.load(), 0) << "the job of a destroyed task ran";
  EXPECT_EQ(resumed, 0);
}

TEST(Offload, DestroyingATaskWaitsForItsRunningJob) {
  // A job already running when its task is destroyed keeps using the task's
  // frame (its captures, the result slot) until it returns: the destruction
  // waits for it rather than free the frame under it.
  BlockingPool pool(1);
  std::atomic<bool> started{false}, finished{false};
  bool finished_before_destroy_returned = false;
  {
    Loop loop;
    auto task = [&]() -> Task<> {
      std::string local = "frame data";
      co_await offload(
          [&] {
            started = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            local += " still alive";  // writes into the frame
            finished = true;
          },
          pool);
    };
    loop.spawn(task());
    loop.run_until_complete([&]() -> Task<> {
      while (!started.load()) co_await atl::runtime::sleep_for(1);
    }());
    loop.destroy_tasks();
    finished_before_destroy_returned = finished.load();
  }
  EXPECT_TRUE(finished_before_destroy_returned);
}

TEST(Offload, AResumptionPostedForADestroyedTaskIsDropped) {
  // The job finished and posted its task's resumption while the loop was not
  // running; the task is then destroyed. A later run() must not resume it.
  BlockingPool pool(1);
  std::atomic<bool> release{false}, sentinel{false};
  int resumed = 0;
  Loop loop;
  auto task = [&]() -> Task<> {
    char pad[1900];  // a size class of its own: a dead frame is not reused
    std::memset(pad, 0, sizeof pad);
    co_await offload(
        [&] {
          while (!release.load()) std::this_thread::yield();
        },
        pool);
    resumed += 1 + pad[0];
  };
  loop.spawn(task());
  loop.run_until_complete([]() -> Task<> { co_await atl::runtime::sleep_for(1); }());
  release = true;
  pool.submit([&] { sentinel = true; });
  ASSERT_TRUE(atl::test::wait_until([&] { return sentinel.load(); }));  // the post happened
  loop.destroy_tasks();
  loop.run_until_complete([]() -> Task<> { co_await atl::runtime::sleep_for(5); }());
  EXPECT_EQ(resumed, 0);
}
