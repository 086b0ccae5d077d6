// The per-thread frame recycler: blocks are reused, never shared while live.
#include <atoll/runtime/frame_allocator.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

using atl::runtime::allocate_frame;
using atl::runtime::deallocate_frame;

namespace {
struct Block {
  void* p;
  std::size_t size;
  unsigned char fill;
};
bool intact(const Block& b) {
  auto* c = static_cast<unsigned char*>(b.p);
  for (std::size_t i = 0; i < b.size; ++i)
    if (c[i] != b.fill) return false;
  return true;
}
}  // namespace

TEST(FrameAllocator, LiveBlocksNeverOverlapAcrossReuse) {
  // Allocates and frees blocks of every size class (and beyond) in a
  // shuffled pattern; each live block keeps its own fill byte throughout.
  std::vector<Block> live;
  unsigned seed = 7;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int round = 0; round < 20'000; ++round) {
    if (live.size() < 300 && (next() >> 8) % 3 != 0) {
      std::size_t size = 1 + (next() >> 8) % 2600;  // up to past the 2 KiB classes
      Block b{allocate_frame(size), size, static_cast<unsigned char>(next() >> 24)};
      ASSERT_NE(b.p, nullptr);
      std::memset(b.p, b.fill, size);
      live.push_back(b);
    } else if (!live.empty()) {
      std::size_t i = (next() >> 8) % live.size();
      ASSERT_TRUE(intact(live[i])) << "a block was overwritten while live (round " << round << ")";
      deallocate_frame(live[i].p, live[i].size);
      live[i] = live.back();
      live.pop_back();
    }
  }
  for (auto& b : live) {
    EXPECT_TRUE(intact(b));
    deallocate_frame(b.p, b.size);
  }
}

TEST(FrameAllocator, FreedBlocksAreReusedForTheSameSizeClass) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "frames bypass the recycler under AddressSanitizer";
#endif
  void* a = allocate_frame(200);
  deallocate_frame(a, 200);
  void* b = allocate_frame(192 + 1);  // same 64-byte class as 200
  EXPECT_EQ(a, b) << "the recycler did not reuse a freed block";
  deallocate_frame(b, 193);
}

TEST(FrameAllocator, BlocksMayBeFreedOnAnotherThread) {
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) {
    void* p = allocate_frame(100);
    std::memset(p, 0xAB, 100);
    blocks.push_back(p);
  }
  std::thread other([&] {
    for (void* p : blocks) deallocate_frame(p, 100);
    // Reused on that thread: still distinct blocks.
    std::set<void*> seen;
    std::vector<void*> again;
    for (int i = 0; i < 1000; ++i) {
      void* p = allocate_frame(100);
      EXPECT_TRUE(seen.insert(p).second);
      again.push_back(p);
    }
    for (void* p : again) deallocate_frame(p, 100);
  });
  other.join();
}
