#pragma once
// Loop: one event loop per thread (epoll), owning the tasks it spawns.
//
// A loop waits for readiness (epoll, edge-triggered), fires due timers,
// accepts work posted from other threads, and resumes coroutines. Everything
// a loop touches belongs to it alone, so nothing on the hot path takes a lock.
// Resumptions are collected first and run afterwards, so a coroutine that
// closes a socket cannot leave a dangling pointer in the current event batch.
#include <atoll/runtime/clock.hpp>
#include <atoll/runtime/task.hpp>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace atl::runtime {

/// Describes a running task for the watchdog ("connection 127.0.0.1:5000 …").
/// Formatted only when something is reported, so it costs nothing otherwise.
struct TaskTag {
  /// A tag usually lives in its task's frame and may die in the middle of the
  /// resumption the watchdog is timing; it tells its loop so, and the loop
  /// stops pointing at it.
  virtual ~TaskTag();
  virtual void describe(std::string& out) const = 0;
};

/// A suspended coroutine and the task it belongs to.
struct Waiter {
  std::coroutine_handle<> handle;
  const TaskTag* tag = nullptr;
  explicit operator bool() const noexcept { return bool(handle); }
};

/// A timer entry: lives inside whatever owns it (a socket, a sleep) and sits
/// in its loop's heap while armed. Re-arming an armed node to a later time is
/// free when the owner stores its own deadline and re-arms on fire.
struct TimerNode {
  static constexpr std::size_t not_armed = ~std::size_t{0};
  std::int64_t when_ms = 0;
  std::size_t heap_index = not_armed;
  void (*fire)(TimerNode*) = nullptr;
  void* owner = nullptr;  // what fire() acts on
  bool armed() const noexcept { return heap_index != not_armed; }
};

/// Readiness of one file descriptor, registered once with the loop (EPOLLET).
struct IoWatch {
  int fd = -1;
  bool readable = false;  // edge seen and not yet drained
  bool writable = false;
  // The peer closed its side (EPOLLRDHUP/HUP/ERR seen): the end of the stream
  // is pending behind whatever bytes remain, and no further edge will
  // announce it, so a short read must not be taken to mean "drained".
  bool peer_closed = false;
  Waiter reader;
  Waiter writer;
};

class Loop {
 public:
  /// `index` names the loop in logs; lag threshold: see set_lag_threshold.
  explicit Loop(unsigned index = 0);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// The loop running on this thread, or nullptr.
  static Loop* current() noexcept;

  /// Runs until stop() is called. Must be called on the loop's own thread.
  void run();
  /// Asks run() to return; thread-safe.
  void stop();
  /// Runs `task` on this loop until it completes and returns its result.
  template <class T>
  T run_until_complete(Task<T> task);

  /// Starts `task` as a root ("process") owned by this loop. It runs until it
  /// completes; an exception escaping it is logged and counted. `tag` must
  /// outlive the task (it usually lives in the task's own frame).
  void spawn(Task<> task, const TaskTag* tag = nullptr);
  /// The same with a link the caller provides (embedded in its own state, to
  /// save an allocation per connection); `link.done` must be set and is
  /// called once the task's frame is gone.
  void spawn(Task<> task, RootLink& link, const TaskTag* tag = nullptr);
  std::size_t live_tasks() const noexcept { return live_tasks_; }

  /// Queues a coroutine to be resumed on this loop (same thread only).
  void schedule(Waiter w) { ready_.push_back(w); }
  /// Queues a coroutine for the next iteration, after the next I/O poll.
  void defer(Waiter w) { deferred_.push_back(w); }
  /// Thread-safe: resume `h` on this loop, or run `fn` on it.
  void post(Waiter w);
  void post(std::function<void()> fn);

  /// Milliseconds of the current iteration (cached; one clock read per wake).
  std::int64_t now_ms() const noexcept { return now_ms_; }
  void arm(TimerNode& node, std::int64_t when_ms);
  void disarm(TimerNode& node) noexcept;

  /// Registers a descriptor for edge-triggered readiness; false on error (errno set).
  bool watch(IoWatch& w);
  void unwatch(IoWatch& w) noexcept;

  /// The task whose code is running now (for awaiters that suspend it).
  const TaskTag* current_tag() const noexcept { return current_tag_; }
  /// Names the running task from inside it (a task that creates its own tag).
  void set_current_tag(const TaskTag* tag) noexcept { current_tag_ = tag; }
  /// Destroys every task still suspended on this loop (its destructor does
  /// this too); call on the loop's thread after run() returned.
  void destroy_tasks() noexcept;

  /// Watchdog: a resumption that holds the loop longer than this is logged
  /// with the task's description and counted. Default 100 ms: long enough to
  /// ignore scheduling noise, short enough to catch a blocking call.
  void set_lag_threshold(std::int64_t ms) noexcept { lag_threshold_ms_ = ms; }
  std::uint64_t stalls() const noexcept { return stalls_.load(std::memory_order_relaxed); }
  std::int64_t max_lag_ms() const noexcept { return max_lag_ms_.load(std::memory_order_relaxed); }
  std::uint64_t task_failures() const noexcept { return task_failures_; }

  /// Loop lag: every `interval_ms` a timer notes how late the loop got to
  /// it; a loop that is saturated, or held by a blocking call, runs it late.
  /// Call before run() or on the loop's thread; 0 (the default) is off.
  void set_lag_probe(std::int64_t interval_ms);
  /// The worst lateness of the probe over the last 20-40 probes, in ms (0
  /// until one has run). Any thread.
  std::int64_t lag_ms() const noexcept { return lag_ms_.load(std::memory_order_relaxed); }

  unsigned index() const noexcept { return index_; }

 private:
  friend void finish_root(RootLink*, std::coroutine_handle<>, std::exception_ptr&) noexcept;
  void link_root(RootLink& link) noexcept;
  void unlink_root(RootLink& link) noexcept;
  void drain_posts();
  void fire_timers();
  void run_ready();
  int next_timeout_ms() const;
  void heap_up(std::size_t i) noexcept;
  void heap_down(std::size_t i) noexcept;
  void heap_swap(std::size_t a, std::size_t b) noexcept;
  friend struct TaskTag;
  void forget_tag(const TaskTag* tag) noexcept;

  unsigned index_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stop_requested_{false};
  std::int64_t now_ms_ = 0;

  std::vector<Waiter> ready_;
  std::vector<Waiter> deferred_;  // yield(): resumed after the next epoll_wait
  std::vector<Waiter> running_;
  std::vector<TimerNode*> heap_;

  std::mutex post_mutex_;
  std::vector<Waiter> posted_handles_;
  std::vector<std::function<void()>> posted_fns_;
  std::atomic<bool> wake_pending_{false};

  RootLink* roots_ = nullptr;  // intrusive list of live root tasks
  std::size_t live_tasks_ = 0;
  std::uint64_t task_failures_ = 0;

  const TaskTag* current_tag_ = nullptr;
  bool current_tag_died_ = false;  // the running task's tag ended during this resumption
  std::int64_t lag_threshold_ms_ = 100;
  std::atomic<std::uint64_t> stalls_{0};
  std::atomic<std::int64_t> max_lag_ms_{0};
  TimerNode lag_probe_;
  std::int64_t lag_probe_interval_ms_ = 0;
  std::atomic<std::int64_t> lag_ms_{0};
  std::int64_t lag_window_max_ = 0, lag_previous_max_ = 0;
  int lag_window_probes_ = 0;
};

/// Suspends the current task for `ms` milliseconds on its loop.
struct SleepAwaiter {
  explicit SleepAwaiter(std::int64_t duration_ms) noexcept : ms(duration_ms) {}
  std::int64_t ms;
  Loop* loop = nullptr;
  TimerNode node;
  Waiter waiter;
  ~SleepAwaiter() {
    if (node.armed()) loop->disarm(node);  // the sleeping task was destroyed
  }
  bool await_ready() const noexcept { return ms <= 0; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() const noexcept {}
};
inline SleepAwaiter sleep_for(std::int64_t ms) { return SleepAwaiter(ms); }

/// Yields to let other tasks run: resumes in the next loop iteration, after
/// the loop has polled for I/O (so a busy task cannot starve the sockets).
struct YieldAwaiter {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    Loop::current()->defer({h, Loop::current()->current_tag()});
  }
  void await_resume() const noexcept {}
};
inline YieldAwaiter yield() { return {}; }

template <class T>
T Loop::run_until_complete(Task<T> task) {
  std::exception_ptr error;
  std::optional<std::conditional_t<std::is_void_v<T>, int, T>> result;
  auto wrapper = [](Loop& loop, Task<T> t, std::exception_ptr& err,
                    decltype(result)& out) -> Task<> {
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(t);
        out.emplace(0);
      } else {
        out.emplace(co_await std::move(t));
      }
    } catch (...) {
      err = std::current_exception();
    }
    loop.stop();
  };
  spawn(wrapper(*this, std::move(task), error, result));
  run();
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<T>) return std::move(*result);
}

}  // namespace atl::runtime
