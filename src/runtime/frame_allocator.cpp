#include <atoll/runtime/frame_allocator.hpp>

#include <array>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace atl::runtime {

namespace {

// Size classes of 16 bytes up to 2 KiB, carved from 64 KiB slabs: a frame
// costs its size rounded to 16, with no allocator header. Per-connection
// memory is a budget (an idle connection is a socket and a frame or two),
// and 64-byte classes plus malloc's header cost ~80 bytes a frame.
constexpr std::size_t granule = 16;
constexpr std::size_t max_size = 2048;
constexpr std::size_t classes = max_size / granule;
constexpr std::size_t slab_size = 64 * 1024;

struct FreeBlock {
  FreeBlock* next;
};

// Slabs are never given back while the process runs: a block freed on one
// thread may be reused on another, so no thread owns a slab's lifetime.
// Freed blocks wait in free lists, so memory is bounded by the peak.
struct SlabRegistry {
  std::mutex mutex;
  std::vector<void*> slabs;
  ~SlabRegistry() {
    for (void* s : slabs) ::operator delete(s);
  }
};
SlabRegistry& registry() {
  static SlabRegistry r;
  return r;
}

struct ThreadFrames {
  std::array<FreeBlock*, classes> head{};
  char* cursor = nullptr;
  std::size_t left = 0;
};
thread_local ThreadFrames frames;

// Under AddressSanitizer every frame goes to malloc, so a frame used after
// its task ended is reported instead of silently recycled. (malloc, not
// operator new: a test that counts operator new calls on a hot path then
// sees the same thing in both builds.)
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pooling = false;
#else
constexpr bool pooling = true;
#endif

inline std::size_t class_of(std::size_t size) { return (size + granule - 1) / granule - 1; }

}  // namespace

void* allocate_frame(std::size_t size) {
  std::size_t c = class_of(size);
  if (!pooling) {
    if (void* p = std::malloc(size)) return p;
    throw std::bad_alloc();
  }
  if (c >= classes) return ::operator new(size);
  if (FreeBlock* b = frames.head[c]) {
    frames.head[c] = b->next;
    return b;
  }
  std::size_t need = (c + 1) * granule;
  if (frames.left < need) {
    void* slab = ::operator new(slab_size);
    {
      auto& r = registry();
      std::lock_guard lock(r.mutex);
      r.slabs.push_back(slab);
    }
    frames.cursor = static_cast<char*>(slab);
    frames.left = slab_size;
  }
  void* p = frames.cursor;
  frames.cursor += need;
  frames.left -= need;
  return p;
}

void deallocate_frame(void* frame, std::size_t size) noexcept {
  std::size_t c = class_of(size);
  if (!pooling) {
    std::free(frame);
    return;
  }
  if (c >= classes) {
    ::operator delete(frame);
    return;
  }
  auto* b = static_cast<FreeBlock*>(frame);
  b->next = frames.head[c];
  frames.head[c] = b;
}

}  // namespace atl::runtime
