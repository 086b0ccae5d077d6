#pragma once
// Task<T>: a lazy coroutine with symmetric transfer.
//
// A Task does nothing until it is awaited (or spawned on a loop). Awaiting it
// transfers control straight into it, and its completion transfers straight
// back to the awaiter, so deep call chains neither grow the stack nor pass
// through a scheduler. An exception thrown inside propagates to the awaiter.
#include <atoll/runtime/frame_allocator.hpp>

#include <cassert>
#include <coroutine>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace atl {

namespace runtime {
/// A spawned root task's place in its loop's list. It lives outside the
/// coroutine frame (in the spawner's own state, or allocated by Loop::spawn),
/// so tasks that are awaited, the vast majority, carry none of it.
struct RootLink {
  RootLink* prev = nullptr;
  RootLink* next = nullptr;
  std::coroutine_handle<> handle;
  /// Called once the frame is gone. `error`: what the task threw (or null);
  /// `finished`: false if the loop destroyed it unfinished (teardown).
  void (*done)(RootLink* self, std::exception_ptr error, bool finished) = nullptr;
};
/// Ends a root task (unlink, destroy the frame, call done); in loop.cpp.
void finish_root(RootLink* link, std::coroutine_handle<> frame, std::exception_ptr& error) noexcept;
}  // namespace runtime

template <class T = void>
class Task;

namespace detail {

struct PromiseBase {
  // Frames come from the per-thread recycler: see frame_allocator.hpp.
  static void* operator new(std::size_t size) { return runtime::allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept {
    runtime::deallocate_frame(p, size);
  }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.root_) {
        // A spawned root task: nobody awaits it, so it reports and frees itself.
        runtime::finish_root(p.root_, h, p.error_);
        return std::noop_coroutine();
      }
      return p.continuation_;
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  std::coroutine_handle<> continuation_ = std::noop_coroutine();
  std::exception_ptr error_;
  // Set by Loop::spawn for a root task: finish_root() instead of a continuation.
  runtime::RootLink* root_ = nullptr;
};

template <class T>
struct Promise : PromiseBase {
  Task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(v));
  }
  T take() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  std::optional<T> value_;
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (error_) std::rethrow_exception(error_);
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using handle_type = std::coroutine_handle<promise_type>;

  /// An empty Task. For Task<void> it is also a finished one: awaiting it
  /// returns at once. A function returning Task<> can so answer on its fast
  /// path with `return {};` and keep the coroutine frame for its slow path.
  Task() noexcept = default;
  explicit Task(handle_type h) noexcept : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool valid() const noexcept { return bool(h_); }

  auto operator co_await() && noexcept {
    struct Awaiter {
      handle_type h;
      bool await_ready() const noexcept { return !h || h.done(); }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
        h.promise().continuation_ = awaiting;
        return h;  // symmetric transfer: run the task now, on this stack frame's successor
      }
      T await_resume() {
        if constexpr (std::is_void_v<T>) {
          if (!h) return;  // a Task<void>{} has nothing to run: done
        }
        assert(h && "awaiting an empty Task<T> that has no value");
        return h.promise().take();
      }
    };
    return Awaiter{h_};
  }
  auto operator co_await() & noexcept { return std::move(*this).operator co_await(); }

  /// Gives up ownership of the frame (used by Loop::spawn).
  handle_type release() noexcept { return std::exchange(h_, {}); }

 private:
  void reset() noexcept {
    if (h_) h_.destroy();
    h_ = {};
  }
  handle_type h_;
};

namespace detail {
template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<Promise<T>>::from_promise(*this)};
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<Promise<void>>::from_promise(*this)};
}
}  // namespace detail

}  // namespace atl

namespace atl::runtime {
using atl::Task;
}
