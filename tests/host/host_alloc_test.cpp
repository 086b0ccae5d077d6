// "A cache hit allocates nothing" (issue: the product): this binary counts
// every operator new made by any thread but the test's own, then sends
// keep-alive requests for cached paths and checks that the server side
// made no allocation for them. (Its own binary: the counting operator new
// replaces the global one for every test linked with it.)
#include <atoll/host/host.hpp>
#include <atoll/host/publish.hpp>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "host/temp_dir.hpp"
#include "web/middleware_support.hpp"

namespace {
std::atomic<std::uint64_t> server_allocations{0};
thread_local bool test_thread = false;
}  // namespace

void* operator new(std::size_t n) {
  if (!test_thread) server_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace atl;
using namespace atl::test;

namespace {

// A raw keep-alive client: sends `count` requests one after another on one
// connection and reads each response whole (head, then Content-Length).
class KeepAlive {
 public:
  explicit KeepAlive(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  }
  ~KeepAlive() { ::close(fd_); }

  // Returns the body of the response to one GET.
  std::string get(const std::string& host, const std::string& path) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    if (::write(fd_, req.data(), req.size()) != ssize_t(req.size())) return "write failed";
    std::string in;
    char buf[4096];
    for (;;) {
      auto end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        auto cl = in.find("Content-Length: ");
        std::size_t len = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
        if (in.size() >= end + 4 + len) {
          std::string body = in.substr(end + 4, len);
          in.erase(0, end + 4 + len);
          return body;
        }
      }
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return "connection closed";
      in.append(buf, std::size_t(n));
    }
  }

 private:
  int fd_;
};

TEST(HostAllocation, ACacheHitAllocatesNothing) {
  test_thread = true;
  TempDir dir;
  auto store = std::make_shared<host::ContentStore>(dir.path());
  std::shared_ptr<host::Database> db = host::open_sqlite(dir / "atoll.db");
  host::Publisher(*store, *db)
      .publish_files("site", {{"index.html", "<p>home</p>"}, {"app.js", std::string(3000, 'j')}});
  // A long poll: the watcher's own database reads must not land in the
  // measured window.
  host::Host h(db, store, {.poll_ms = 600'000});
  h.start();
  HttpTestServer server(h.app());
  KeepAlive c(server.port());
  // The counter sees the server's allocations: a first request (a cache
  // miss, resolved through the database) makes some.
  std::uint64_t start = server_allocations.load();
  ASSERT_EQ(c.get("site.localhost", "/"), "<p>home</p>");
  EXPECT_GT(server_allocations.load() - start, 0u);
  // Warm up: the first requests fill the resolver cache, the connection's
  // buffers and the coroutine frame slabs.
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(c.get("site.localhost", "/"), "<p>home</p>");
    ASSERT_EQ(c.get("site.localhost", "/app.js").size(), 3000u);
  }
  std::uint64_t before = server_allocations.load();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(c.get("site.localhost", "/"), "<p>home</p>");
    ASSERT_EQ(c.get("SITE.localhost:8080", "/app.js").size(), 3000u);
  }
  EXPECT_EQ(server_allocations.load() - before, 0u) << "allocations for 2,000 cache hits";
  h.stop();
}

}  // namespace
