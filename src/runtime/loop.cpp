#include <atoll/runtime/log.hpp>
#include <atoll/runtime/loop.hpp>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace atl::runtime {

namespace {
thread_local Loop* this_thread_loop = nullptr;
// Events fetched per epoll_wait: enough to amortise the syscall under load,
// small enough that one wake does not starve timers.
constexpr int max_events = 256;
}  // namespace

Loop::Loop(unsigned index) : index_(index) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake-up eventfd
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(eventfd)");
  now_ms_ = monotonic_ms();
  ready_.reserve(max_events);
  running_.reserve(max_events);
}

Loop::~Loop() {
  destroy_tasks();
  close(wake_fd_);
  close(epoll_fd_);
}

void Loop::destroy_tasks() noexcept {
  // Tasks still suspended when the loop goes away are destroyed, which runs
  // their destructors (closing sockets), newest first.
  Loop* previous = this_thread_loop;
  this_thread_loop = this;
  // Resumptions still queued belong to the tasks about to be destroyed (or
  // to their children): a later run() must not resume a dead frame. That
  // includes those other threads posted (offload) and the loop has not yet
  // taken in; posted functions stay, they hold no frame.
  ready_.clear();
  {
    std::lock_guard lock(post_mutex_);
    posted_handles_.clear();
  }
  while (roots_) {
    RootLink* link = roots_;
    unlink_root(*link);
    link->handle.destroy();
    link->done(link, nullptr, false);
  }
  this_thread_loop = previous;
}

Loop* Loop::current() noexcept { return this_thread_loop; }

TaskTag::~TaskTag() {
  if (this_thread_loop) this_thread_loop->forget_tag(this);
}

void Loop::forget_tag(const TaskTag* tag) noexcept {
  if (current_tag_ != tag) return;
  // The task named itself with a tag in its own frame and is ending: the
  // watchdog must not describe it after this (its derived part is gone).
  current_tag_ = nullptr;
  current_tag_died_ = true;
}

void Loop::stop() {
  stop_requested_.store(true, std::memory_order_release);
  if (this_thread_loop != this && !wake_pending_.exchange(true)) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
}

void Loop::link_root(RootLink& link) noexcept {
  link.prev = nullptr;
  link.next = roots_;
  if (roots_) roots_->prev = &link;
  roots_ = &link;
  ++live_tasks_;
}

void Loop::unlink_root(RootLink& link) noexcept {
  if (link.prev)
    link.prev->next = link.next;
  else if (roots_ == &link)
    roots_ = link.next;
  if (link.next) link.next->prev = link.prev;
  link.prev = link.next = nullptr;
  --live_tasks_;
}

void Loop::spawn(Task<> task, RootLink& link, const TaskTag* tag) {
  auto h = task.release();
  if (!h) {
    link.done(&link, nullptr, true);
    return;
  }
  h.promise().root_ = &link;
  link.handle = h;
  link_root(link);
  ready_.push_back({h, tag});
}

namespace {
// The link Loop::spawn(task, tag) makes for a task nobody else tracks: it
// logs what the task threw and frees itself.
struct OwnedRoot final : RootLink {
  static void finished(RootLink* self, std::exception_ptr error, bool) {
    if (error) {
      Loop* loop = Loop::current();
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        log::error("loop {}: task ended with an exception: {}", loop ? loop->index() : 0, e.what());
      } catch (...) {
        log::error("loop {}: task ended with a non-standard exception", loop ? loop->index() : 0);
      }
    }
    delete static_cast<OwnedRoot*>(self);
  }
};
}  // namespace

void Loop::spawn(Task<> task, const TaskTag* tag) {
  auto* link = new OwnedRoot;
  link->done = &OwnedRoot::finished;
  spawn(std::move(task), *link, tag);
}

void finish_root(RootLink* link, std::coroutine_handle<> frame,
                 std::exception_ptr& error) noexcept {
  Loop* loop = Loop::current();
  if (loop) {
    loop->unlink_root(*link);
    if (error) ++loop->task_failures_;
  }
  std::exception_ptr e = std::move(error);
  frame.destroy();
  link->done(link, std::move(e), true);
}

void Loop::post(Waiter w) {
  {
    std::lock_guard lock(post_mutex_);
    posted_handles_.push_back(w);
  }
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
}

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(post_mutex_);
    posted_fns_.push_back(std::move(fn));
  }
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
}

void Loop::drain_posts() {
  std::uint64_t count;
  [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
  wake_pending_.store(false, std::memory_order_release);
  std::vector<Waiter> handles;
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lock(post_mutex_);
    handles.swap(posted_handles_);
    fns.swap(posted_fns_);
  }
  for (auto w : handles) ready_.push_back(w);
  for (auto& fn : fns) fn();
}

bool Loop::watch(IoWatch& w) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &w;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, w.fd, &ev) == 0;
}

void Loop::unwatch(IoWatch& w) noexcept {
  if (w.fd >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr);
}

// --- timers: an intrusive binary min-heap keyed by when_ms -------------------

void Loop::heap_swap(std::size_t a, std::size_t b) noexcept {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->heap_index = a;
  heap_[b]->heap_index = b;
}

void Loop::heap_up(std::size_t i) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (heap_[parent]->when_ms <= heap_[i]->when_ms) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void Loop::heap_down(std::size_t i) noexcept {
  for (;;) {
    std::size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_.size() && heap_[l]->when_ms < heap_[m]->when_ms) m = l;
    if (r < heap_.size() && heap_[r]->when_ms < heap_[m]->when_ms) m = r;
    if (m == i) return;
    heap_swap(i, m);
    i = m;
  }
}

void Loop::arm(TimerNode& node, std::int64_t when_ms) {
  if (node.armed()) {
    std::int64_t old = node.when_ms;
    node.when_ms = when_ms;
    if (when_ms < old)
      heap_up(node.heap_index);
    else
      heap_down(node.heap_index);
    return;
  }
  node.when_ms = when_ms;
  node.heap_index = heap_.size();
  heap_.push_back(&node);
  heap_up(node.heap_index);
}

void Loop::disarm(TimerNode& node) noexcept {
  if (!node.armed()) return;
  std::size_t i = node.heap_index;
  std::size_t last = heap_.size() - 1;
  if (i != last) {
    heap_swap(i, last);
    heap_.pop_back();
    heap_down(i);
    heap_up(i);
  } else {
    heap_.pop_back();
  }
  node.heap_index = TimerNode::not_armed;
}

void Loop::set_lag_probe(std::int64_t interval_ms) {
  lag_probe_interval_ms_ = interval_ms;
  if (interval_ms <= 0) {
    disarm(lag_probe_);
    return;
  }
  lag_probe_.owner = this;
  lag_probe_.fire = [](TimerNode* n) {
    auto* loop = static_cast<Loop*>(n->owner);
    std::int64_t late = std::max<std::int64_t>(0, monotonic_ms() - n->when_ms);
    // Reported: the worst of this window of 20 probes and the last one, so
    // a spike stays visible for 20-40 probes, whenever it is read.
    loop->lag_window_max_ = std::max(loop->lag_window_max_, late);
    if (++loop->lag_window_probes_ == 20) {
      loop->lag_previous_max_ = loop->lag_window_max_;
      loop->lag_window_max_ = 0;
      loop->lag_window_probes_ = 0;
    }
    loop->lag_ms_.store(std::max(loop->lag_window_max_, loop->lag_previous_max_),
                        std::memory_order_relaxed);
    loop->arm(*n, loop->now_ms_ + loop->lag_probe_interval_ms_);
  };
  arm(lag_probe_, monotonic_ms() + interval_ms);
}

void Loop::fire_timers() {
  while (!heap_.empty() && heap_[0]->when_ms <= now_ms_) {
    TimerNode* node = heap_[0];
    disarm(*node);
    node->fire(node);
  }
}

int Loop::next_timeout_ms() const {
  if (!ready_.empty() || stop_requested_.load(std::memory_order_relaxed)) return 0;
  if (heap_.empty()) return -1;
  std::int64_t d = heap_[0]->when_ms - monotonic_ms();
  return d <= 0 ? 0 : int(std::min<std::int64_t>(d, 1 << 30));
}

// --- running ----------------------------------------------------------------

void Loop::run_ready() {
  while (!ready_.empty()) {
    running_.swap(ready_);
    std::int64_t t0 = coarse_ms();
    for (auto& w : running_) {
      current_tag_ = w.tag;
      current_tag_died_ = false;
      w.handle.resume();
      std::int64_t t1 = coarse_ms();
      std::int64_t held = t1 - t0;
      if (held > lag_threshold_ms_) {
        stalls_.fetch_add(1, std::memory_order_relaxed);
        if (held > max_lag_ms_.load(std::memory_order_relaxed))
          max_lag_ms_.store(held, std::memory_order_relaxed);
        std::string what =
            current_tag_died_ ? "a task that ended before it could be named" : "an untagged task";
        if (current_tag_) {
          what.clear();
          current_tag_->describe(what);
        }
        log::warn("watchdog: loop {} was held for {} ms by {}; move blocking work to offload()",
                  index_, held, what);
      }
      t0 = t1;
    }
    current_tag_ = nullptr;
    running_.clear();
  }
}

void Loop::run() {
  Loop* previous = this_thread_loop;
  this_thread_loop = this;
  // The cached clock last moved when the previous run() last woke, which
  // may be long ago: deadlines taken from now_ms() would be in the past.
  now_ms_ = monotonic_ms();
  epoll_event events[max_events];
  while (!stop_requested_.load(std::memory_order_acquire)) {
    run_ready();
    if (stop_requested_.load(std::memory_order_acquire)) break;
    int n = epoll_wait(epoll_fd_, events, max_events, deferred_.empty() ? next_timeout_ms() : 0);
    // Yielded tasks go after whatever this poll made ready.
    for (auto& w : deferred_) ready_.push_back(w);
    deferred_.clear();
    if (n < 0 && errno != EINTR)
      throw std::system_error(errno, std::generic_category(), "epoll_wait");
    now_ms_ = monotonic_ms();
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<IoWatch*>(events[i].data.ptr);
      if (!w) {
        drain_posts();
        continue;
      }
      std::uint32_t e = events[i].events;
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        w->readable = true;
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) w->peer_closed = true;
        if (w->reader) ready_.push_back(std::exchange(w->reader, {}));
      }
      if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        w->writable = true;
        if (w->writer) ready_.push_back(std::exchange(w->writer, {}));
      }
    }
    fire_timers();
  }
  stop_requested_.store(false, std::memory_order_relaxed);
  this_thread_loop = previous;
}

void SleepAwaiter::await_suspend(std::coroutine_handle<> h) {
  loop = Loop::current();
  waiter = {h, loop->current_tag()};
  node.owner = this;
  node.fire = [](TimerNode* n) {
    auto* self = static_cast<SleepAwaiter*>(n->owner);
    self->loop->schedule(self->waiter);
  };
  loop->arm(node, deadline_after_ms(ms));
}

}  // namespace atl::runtime
