#pragma once
// offload(fn): run blocking work on a bounded thread pool, resume on the loop.
//
// Disk reads that sendfile cannot do, database calls and heavy CPU work must
// not hold an event loop. `co_await offload(fn)` runs fn on a pool thread and
// resumes the awaiting coroutine on its own loop with fn's result (or its
// exception). The pool has a fixed number of threads; work beyond that waits
// in a queue whose length is bounded by the number of suspended tasks.
#include <atoll/runtime/loop.hpp>

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace atl::runtime {

class BlockingPool {
 public:
  /// `threads`: how many blocking calls may run at once.
  explicit BlockingPool(unsigned threads);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  /// The process-wide pool: 16 threads by default (ATOLL_BLOCKING_THREADS),
  /// enough to keep a disk and a database busy without thrashing 2 cores.
  static BlockingPool& shared();

  void submit(std::function<void()> job);
  std::size_t queued() const;

 private:
  void work();
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

namespace detail {
/// What an offloaded job and its awaiter share. The awaiter lives in the
/// task's frame, and the task can be destroyed while its job waits in the
/// queue or runs (a server destroys stragglers at stop): the job must then
/// not start, not post a resumption, and not outlive the frame it writes to.
struct OffloadState {
  std::mutex mutex;
  std::condition_variable cv;
  bool abandoned = false;  // the awaiter is gone, or going
  bool running = false;    // the job is inside fn
};
}  // namespace detail

template <class F>
struct OffloadAwaiter {
  using R = std::invoke_result_t<F&>;
  F fn;
  BlockingPool* pool;
  std::optional<std::conditional_t<std::is_void_v<R>, char, R>> result;
  std::exception_ptr error;
  std::shared_ptr<detail::OffloadState> state;

  OffloadAwaiter(F f, BlockingPool* p) : fn(std::move(f)), pool(p) {}
  OffloadAwaiter(const OffloadAwaiter&) = delete;
  OffloadAwaiter& operator=(const OffloadAwaiter&) = delete;
  /// Destroyed before resumption only when its task is destroyed: a queued
  /// job is skipped, a running one is waited for (it uses this frame).
  ~OffloadAwaiter() {
    if (!state) return;
    std::unique_lock lock(state->mutex);
    state->abandoned = true;
    state->cv.wait(lock, [this] { return !state->running; });
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    Loop* loop = Loop::current();
    Waiter w{h, loop->current_tag()};
    state = std::make_shared<detail::OffloadState>();
    pool->submit([this, loop, w, st = state] {
      {
        std::lock_guard lock(st->mutex);
        if (st->abandoned) return;  // the task is gone: do not touch its frame
        st->running = true;
      }
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          result.emplace(0);
        } else {
          result.emplace(fn());
        }
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard lock(st->mutex);
      st->running = false;
      if (st->abandoned) {
        st->cv.notify_all();  // the destructor waits for us
        return;
      }
      // Posted under the lock: the awaiter (and its loop) cannot go away
      // between the check above and the post.
      loop->post(w);
    });
  }
  R await_resume() {
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>) return std::move(*result);
  }
};

/// co_await offload([&]{ return blocking_call(); }) — see the file comment.
template <class F>
OffloadAwaiter<std::decay_t<F>> offload(F&& fn, BlockingPool& pool = BlockingPool::shared()) {
  return OffloadAwaiter<std::decay_t<F>>(std::forward<F>(fn), &pool);
}

}  // namespace atl::runtime
