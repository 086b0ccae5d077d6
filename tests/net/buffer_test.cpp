// Buffer: leased from a per-thread pool, returned on release or destruction.
#include <atoll/net/buffer.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

using atl::net::Buffer;
using atl::net::pooled_buffers;

TEST(Buffer, ReleasedBuffersAreReused) {
  char* first = nullptr;
  {
    Buffer b = Buffer::lease();
    ASSERT_TRUE(b);
    EXPECT_EQ(b.span().size(), Buffer::capacity);
    std::memset(b.data(), 'x', Buffer::capacity);  // the whole capacity is ours
    first = b.data();
  }
  std::size_t pooled = pooled_buffers();
  EXPECT_GE(pooled, 1u);
  Buffer again = Buffer::lease();
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(pooled_buffers(), pooled - 1);
}

TEST(Buffer, MovesTransferOwnership) {
  Buffer a = Buffer::lease();
  char* p = a.data();
  Buffer b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is the contract
  EXPECT_EQ(a.span().size(), 0u);
  EXPECT_EQ(b.data(), p);
  Buffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  c.release();
  EXPECT_FALSE(c);
  c.release();  // twice is harmless
}

TEST(Buffer, ThePoolIsBounded) {
  std::thread t([] {
    std::vector<Buffer> many;
    for (int i = 0; i < 200; ++i) many.push_back(Buffer::lease());
    many.clear();
    EXPECT_EQ(pooled_buffers(), 64u);  // the rest went back to the allocator
  });
  t.join();
}
