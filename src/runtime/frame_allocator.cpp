#include <atoll/runtime/frame_allocator.hpp>

#include <array>
#include <cstdlib>
#include <new>

namespace atl::runtime {

namespace {

// Size classes of 64 bytes up to 2 KiB: coroutine frames in atoll are small
// (a few hundred bytes); larger ones are rare and go to operator new.
constexpr std::size_t granule = 64;
constexpr std::size_t classes = 32;
// Blocks kept per class and thread: bounds what a burst can leave behind.
constexpr std::size_t keep_per_class = 4096;

struct FreeBlock {
  FreeBlock* next;
};

struct FreeLists {
  std::array<FreeBlock*, classes> head{};
  std::array<std::size_t, classes> count{};
  ~FreeLists() {
    for (auto* b : head) {
      while (b) {
        auto* next = b->next;
        ::operator delete(b);
        b = next;
      }
    }
  }
};

thread_local FreeLists lists;

// Under AddressSanitizer every frame goes to the real allocator, so a frame
// used after its task ended is reported instead of silently recycled.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pooling = false;
#else
constexpr bool pooling = true;
#endif

inline std::size_t class_of(std::size_t size) { return (size + granule - 1) / granule - 1; }

// Under AddressSanitizer every frame goes to operator new and back, so a
// coroutine resumed after its frame was freed is reported instead of running
// quietly in a recycled block.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool recycle = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool recycle = false;
#else
constexpr bool recycle = true;
#endif
#else
constexpr bool recycle = true;
#endif

}  // namespace

void* allocate_frame(std::size_t size) {
  if (!pooling) return ::operator new(size);
  if (!recycle) return ::operator new(size);
  std::size_t c = class_of(size);
  if (c >= classes) return ::operator new(size);
  if (FreeBlock* b = lists.head[c]) {
    lists.head[c] = b->next;
    --lists.count[c];
    return b;
  }
  return ::operator new((c + 1) * granule);
}

void deallocate_frame(void* frame, std::size_t size) noexcept {
  if (!pooling) {
    ::operator delete(frame);
    return;
  }
  std::size_t c = class_of(size);
  if (!recycle || c >= classes || lists.count[c] >= keep_per_class) {
    ::operator delete(frame);
    return;
  }
  auto* b = static_cast<FreeBlock*>(frame);
  b->next = lists.head[c];
  lists.head[c] = b;
  ++lists.count[c];
}

}  // namespace atl::runtime
