// Task<T>: laziness, values, exceptions, deep symmetric transfer.
#include <atoll/runtime/loop.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

using atl::Task;
using atl::runtime::Loop;

namespace {

Task<int> forty_two() { co_return 42; }
Task<int> add(int a) { co_return a + co_await forty_two(); }
Task<> thrower() {
  throw std::runtime_error("boom");
  co_return;
}
Task<int> depth(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await depth(n - 1);
}

}  // namespace

TEST(Task, IsLazyUntilAwaited) {
  bool ran = false;
  auto make = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  Loop loop;
  auto t = make();
  EXPECT_FALSE(ran);
  loop.run_until_complete(std::move(t));
  EXPECT_TRUE(ran);
}

TEST(Task, ReturnsValues) {
  Loop loop;
  EXPECT_EQ(loop.run_until_complete(add(8)), 50);
}

TEST(Task, ExceptionsPropagateToTheAwaiter) {
  Loop loop;
  auto outer = []() -> Task<std::string> {
    try {
      co_await thrower();
    } catch (const std::runtime_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not thrown";
  };
  EXPECT_EQ(loop.run_until_complete(outer()), "caught boom");
}

TEST(Task, DeepChainsDoNotGrowTheStack) {
#if defined(__SANITIZE_ADDRESS__)
  // ASan's stack instrumentation keeps GCC from turning the resumption that
  // await_suspend returns into a tail call, so every level takes stack.
  GTEST_SKIP() << "symmetric transfer is not a tail call under AddressSanitizer";
#endif
  // 100,000 nested awaits would overflow an 8 MiB stack without symmetric transfer.
  Loop loop;
  EXPECT_EQ(loop.run_until_complete(depth(100000)), 100000);
}

TEST(Task, UnawaitedTaskIsDestroyedWithoutRunning) {
  bool ran = false;
  {
    auto t = [&]() -> Task<> {
      ran = true;
      co_return;
    }();
  }
  EXPECT_FALSE(ran);
}

TEST(Loop, SpawnedTaskExceptionIsCountedAndDoesNotStopTheLoop) {
  Loop loop;
  loop.spawn(thrower());
  EXPECT_EQ(loop.run_until_complete(forty_two()), 42);
  EXPECT_EQ(loop.task_failures(), 1u);
  EXPECT_EQ(loop.live_tasks(), 0u);
}
