#include <atoll/net/buffer.hpp>

#include <new>
#include <vector>

namespace atl::net {

namespace {
// Buffers kept per thread after use: enough for a burst of busy connections,
// few enough (64 × 16 KiB = 1 MiB) that a spike does not pin memory forever.
constexpr std::size_t keep = 64;

struct Pool {
  std::vector<char*> free;
  ~Pool() {
    for (char* p : free) ::operator delete(p);
  }
};
thread_local Pool pool;
}  // namespace

Buffer Buffer::lease() {
  Buffer b;
  if (!pool.free.empty()) {
    b.data_ = pool.free.back();
    pool.free.pop_back();
  } else {
    b.data_ = static_cast<char*>(::operator new(capacity));
  }
  return b;
}

void Buffer::release() noexcept {
  if (!data_) return;
  if (pool.free.size() < keep) {
    try {
      pool.free.push_back(data_);
      data_ = nullptr;
      return;
    } catch (...) {
    }
  }
  ::operator delete(data_);
  data_ = nullptr;
}

std::size_t pooled_buffers() noexcept { return pool.free.size(); }

}  // namespace atl::net
