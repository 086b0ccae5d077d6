#include <atoll/runtime/offload.hpp>

#include <cstdlib>

namespace atl::runtime {

BlockingPool::BlockingPool(unsigned threads) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

BlockingPool& BlockingPool::shared() {
  static BlockingPool pool([] {
    const char* env = std::getenv("ATOLL_BLOCKING_THREADS");
    int n = env ? std::atoi(env) : 0;
    return n > 0 ? unsigned(n) : 16u;
  }());
  return pool;
}

void BlockingPool::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::size_t BlockingPool::queued() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void BlockingPool::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace atl::runtime
