#pragma once
// StopSource: a loop-local signal that tasks can check or await.
//
// Used for drain ("please finish") and abort ("time is up"). Requesting a
// stop resumes every task awaiting it; it stays requested afterwards.
#include <atoll/runtime/loop.hpp>

namespace atl::runtime {

class StopSource {
 public:
  struct Node {
    Waiter waiter;
    Node* prev = nullptr;
    Node* next = nullptr;
  };

  StopSource() = default;
  StopSource(const StopSource&) = delete;
  StopSource& operator=(const StopSource&) = delete;

  bool requested() const noexcept { return requested_; }
  /// Marks the stop and schedules every waiter on the current loop.
  void request() {
    if (requested_) return;
    requested_ = true;
    while (head_) {
      Node* n = head_;
      unlink(*n);
      Loop::current()->schedule(n->waiter);
    }
  }

  void link(Node& n) noexcept {
    n.prev = nullptr;
    n.next = head_;
    if (head_) head_->prev = &n;
    head_ = &n;
  }
  void unlink(Node& n) noexcept {
    if (n.prev)
      n.prev->next = n.next;
    else if (head_ == &n)
      head_ = n.next;
    if (n.next) n.next->prev = n.prev;
    n.prev = n.next = nullptr;
  }
  bool linked(const Node& n) const noexcept { return n.prev || head_ == &n; }

  /// co_await source.wait(): resumes when a stop is requested.
  auto wait() {
    struct Awaiter {
      StopSource& src;
      Node node;
      ~Awaiter() {
        if (src.linked(node)) src.unlink(node);
      }
      bool await_ready() const noexcept { return src.requested_; }
      void await_suspend(std::coroutine_handle<> h) {
        node.waiter = {h, Loop::current()->current_tag()};
        src.link(node);
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{*this, Node{}};
  }

 private:
  bool requested_ = false;
  Node* head_ = nullptr;
};

/// Sleeps `ms` milliseconds unless `stop` is requested first.
/// Returns true if the full time elapsed, false if the stop cut it short.
struct StoppableSleep {
  StoppableSleep(std::int64_t duration_ms, StopSource& source) noexcept
      : ms(duration_ms), stop(source) {}
  std::int64_t ms;
  StopSource& stop;
  Loop* loop = nullptr;
  TimerNode timer;
  StopSource::Node stop_node;
  bool stopped = false;
  ~StoppableSleep() {
    if (timer.armed()) loop->disarm(timer);
    if (stop.linked(stop_node)) stop.unlink(stop_node);
  }
  bool await_ready() const noexcept { return ms <= 0 || stop.requested(); }
  void await_suspend(std::coroutine_handle<> h) {
    loop = Loop::current();
    stop_node.waiter = {h, loop->current_tag()};
    stop.link(stop_node);
    timer.owner = this;
    timer.fire = [](TimerNode* n) {
      auto* self = static_cast<StoppableSleep*>(n->owner);
      // A stop requested earlier in this same batch already unlinked and
      // scheduled us: scheduling again would resume the task twice.
      if (!self->stop.linked(self->stop_node)) return;
      self->stop.unlink(self->stop_node);
      self->loop->schedule(self->stop_node.waiter);
    };
    loop->arm(timer, deadline_after_ms(ms));
  }
  bool await_resume() noexcept {
    if (timer.armed()) loop->disarm(timer);
    return !stop.requested();
  }
};
inline StoppableSleep sleep_for(std::int64_t ms, StopSource& stop) {
  return StoppableSleep(ms, stop);
}

}  // namespace atl::runtime
