// Socket on its own: a loop on the test thread, the atoll end of a real
// socket pair, and the other end driven with plain system calls.
#include <atoll/net/buffer.hpp>
#include <atoll/net/socket.hpp>
#include <atoll/runtime/loop.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

using namespace atl::test;
using atl::Task;
using atl::net::ConnSignals;
using atl::net::IoResult;
using atl::net::Socket;
using atl::runtime::Loop;
using atl::runtime::sleep_for;

namespace {

// A connected pair: `ours` (non-blocking) goes to a Socket, `theirs` stays a
// plain blocking descriptor for the test.
struct Pair {
  int ours = -1;
  UniqueFd theirs;
  Pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    ours = sv[0];
    theirs.reset(sv[1]);
    ::fcntl(ours, F_SETFL, ::fcntl(ours, F_GETFL) | O_NONBLOCK);
  }
};

std::string drain_blocking(int fd, std::size_t n) { return recv_n(fd, n, 10'000); }

}  // namespace

TEST(Socket, ReadsWhatThePeerWroteAndSeesEof) {
  Loop loop;
  Pair p;
  auto t = [&]() -> Task<std::string> {
    Socket s(p.ours, nullptr, 0);
    std::string got;
    char buf[3];  // smaller than the message: several reads
    for (;;) {
      IoResult r = co_await s.read(buf);
      EXPECT_TRUE(r) << r.error;
      if (!r || r.eof()) break;
      got.append(buf, r.bytes);
    }
    EXPECT_EQ(s.bytes_in(), got.size());
    co_return got;
  };
  ASSERT_TRUE(send_all(p.theirs.get(), "hello, socket"));
  ::shutdown(p.theirs.get(), SHUT_WR);
  EXPECT_EQ(loop.run_until_complete(t()), "hello, socket");
}

TEST(Socket, LargeWritesSuspendUntilThePeerReads) {
  Loop loop;
  Pair p;
  std::string data(8 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = char(i % 251);
  std::string received;
  std::thread reader([&] { received = drain_blocking(p.theirs.get(), data.size()); });
  auto t = [&]() -> Task<IoResult> {
    Socket s(p.ours, nullptr, 0);
    IoResult r = co_await s.write(std::string_view(data));
    EXPECT_EQ(s.bytes_out(), data.size());
    co_return r;
  };
  IoResult r = loop.run_until_complete(t());
  reader.join();
  EXPECT_TRUE(r) << r.error;
  EXPECT_EQ(r.bytes, data.size());
  EXPECT_TRUE(received == data);
}

TEST(Socket, WritevSendsEveryBufferInOrder) {
  Loop loop;
  Pair p;
  std::vector<std::string> parts = {"", "alpha-", "", std::string(300'000, 'b'), "-gamma", ""};
  std::string expected;
  for (auto& s : parts) expected += s;
  std::string received;
  std::thread reader([&] { received = drain_blocking(p.theirs.get(), expected.size()); });
  auto t = [&]() -> Task<IoResult> {
    Socket s(p.ours, nullptr, 0);
    std::vector<iovec> iov;
    for (auto& part : parts) iov.push_back({part.data(), part.size()});
    IoResult r = co_await s.writev(iov);
    for (auto& v : iov) EXPECT_EQ(v.iov_len, 0u) << "writev left a buffer unconsumed";
    co_return r;
  };
  IoResult r = loop.run_until_complete(t());
  reader.join();
  EXPECT_TRUE(r);
  EXPECT_EQ(r.bytes, expected.size());
  EXPECT_TRUE(received == expected);
}

TEST(Socket, SendfileSendsTheRequestedRange) {
  Loop loop;
  // sendfile(2) to a socket needs a TCP or Unix stream socket: a pair will do.
  Pair p;
  std::string dir = make_temp_dir();
  std::string path = dir + "/data.bin";
  std::string content(1 << 20, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = char((i * 31) >> 3);
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
  }
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file);
  const off_t offset = 1000;
  const std::size_t count = content.size() - 5000;
  std::string received;
  std::thread reader([&] { received = drain_blocking(p.theirs.get(), count); });
  auto t = [&]() -> Task<IoResult> {
    Socket s(p.ours, nullptr, 0);
    co_return co_await s.sendfile(file.get(), offset, count);
  };
  IoResult r = loop.run_until_complete(t());
  reader.join();
  EXPECT_TRUE(r) << r.error;
  EXPECT_EQ(r.bytes, count);
  EXPECT_TRUE(received == content.substr(std::size_t(offset), count));
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(Socket, WaitReadableHoldsNoBufferAndReturnsOnData) {
  Loop loop;
  Pair p;
  auto t = [&]() -> Task<std::string> {
    Socket s(p.ours, nullptr, 0);
    std::size_t pooled_before = atl::net::pooled_buffers();
    auto writer = [&]() -> Task<> {
      co_await sleep_for(20);
      send_all(p.theirs.get(), "data");
    };
    loop.spawn(writer());
    IoResult ready = co_await s.wait_readable();
    EXPECT_TRUE(ready);
    EXPECT_EQ(atl::net::pooled_buffers(), pooled_before);
    char buf[16];
    IoResult r = co_await s.read(buf);
    co_return std::string(buf, r.bytes);
  };
  EXPECT_EQ(loop.run_until_complete(t()), "data");
}

TEST(Socket, AnIdleReadTimesOut) {
  Loop loop;
  Pair p;
  auto t = [&]() -> Task<int> {
    Socket s(p.ours, nullptr, 0);
    s.set_io_timeout(100);
    char buf[16];
    IoResult r = co_await s.read(buf);
    co_return r.error;
  };
  // Started before the loop runs: the loop's clock, which the timeout counts
  // from, is read when run() starts, so it cannot be earlier than this.
  Stopwatch sw;
  int error = loop.run_until_complete(t());
  double took = sw.elapsed_ms();
  EXPECT_EQ(error, ETIMEDOUT);
  EXPECT_GE(took, 90.0);
  EXPECT_LT(took, 3000.0);
}

TEST(Socket, ADeadlineBoundsTheTotalTime) {
  Loop loop;
  Pair p;
  auto t = [&]() -> Task<int> {
    Socket s(p.ours, nullptr, 0);
    s.set_io_timeout(10'000);
    s.set_deadline(loop.now_ms() + 80);
    char buf[16];
    IoResult r = co_await s.read(buf);
    co_return r.error;
  };
  Stopwatch sw;
  EXPECT_EQ(loop.run_until_complete(t()), ETIMEDOUT);
  EXPECT_LT(sw.elapsed_ms(), 3000.0);
}

TEST(Socket, AReadTimesOutWhileAnotherTaskWritesOnTheSameSocket) {
  // Full duplex: one task waits to read (the peer never writes) while another
  // writes a lot (the peer reads it). Each direction has its own timeout;
  // the writer's waits must neither postpone nor cancel the reader's.
  Loop loop;
  Pair p;
  std::string data(4 << 20, 'w');
  std::atomic<bool> stop_reading{false};
  std::thread peer([&] {
    char buf[65536];
    std::size_t total = 0;
    while (total < data.size() && !stop_reading) {
      if (!readable_within(p.theirs.get(), 100)) continue;
      ssize_t n = ::recv(p.theirs.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      total += std::size_t(n);
    }
  });
  int read_error = 0, write_error = -1;
  double read_took = 0;
  auto t = [&]() -> Task<> {
    Socket s(p.ours, nullptr, 0);
    s.set_io_timeout(300);
    bool reader_done = false;
    auto reader = [&]() -> Task<> {
      Stopwatch sw;
      char buf[16];
      IoResult r = co_await s.read(buf);
      read_error = r.error;
      read_took = sw.elapsed_ms();
      reader_done = true;
    };
    auto writer = [&]() -> Task<> {
      co_await sleep_for(10);  // the reader waits first
      IoResult r = co_await s.write(std::string_view(data));
      write_error = r.error;
    };
    loop.spawn(reader());
    loop.spawn(writer());
    // Bound the test: a lost read timeout would wait forever.
    for (int i = 0; i < 300 && !reader_done; ++i) co_await sleep_for(10);
    if (!reader_done) s.cancel();
    while (!reader_done) co_await sleep_for(1);
  };
  loop.run_until_complete(t());
  stop_reading = true;
  peer.join();
  EXPECT_EQ(write_error, 0);
  EXPECT_EQ(read_error, ETIMEDOUT) << (read_error == ECANCELED ? "the read timeout was lost" : "");
  EXPECT_LT(read_took, 2000.0);
}

TEST(Socket, CancelFailsAPendingReadWithEcanceled) {
  Loop loop;
  Pair p;
  auto t = [&]() -> Task<std::pair<int, int>> {
    Socket s(p.ours, nullptr, 0);
    int pending = 0;
    bool done = false;
    auto reader = [&]() -> Task<> {
      char buf[16];
      IoResult r = co_await s.read(buf);
      pending = r.error;
      done = true;
    };
    loop.spawn(reader());
    co_await sleep_for(10);
    s.cancel();
    while (!done) co_await atl::runtime::yield();
    char buf[16];
    IoResult later = co_await s.read(buf);
    co_return std::pair{pending, later.error};
  };
  auto [pending, later] = loop.run_until_complete(t());
  EXPECT_EQ(pending, ECANCELED);
  EXPECT_EQ(later, ECANCELED);
  // The peer notices: the descriptor was shut down.
  EXPECT_TRUE(wait_closed(p.theirs.get(), 2000));
}

TEST(Socket, ShutdownWriteSendsEofButKeepsReading) {
  Loop loop;
  Pair p;
  auto t = [&]() -> Task<std::string> {
    Socket s(p.ours, nullptr, 0);
    co_await s.write(std::string_view("bye"));
    s.shutdown_write();
    char buf[16];
    IoResult r = co_await s.read(buf);
    co_return std::string(buf, r.bytes);
  };
  std::thread peer([&] {
    EXPECT_EQ(recv_all(p.theirs.get(), 5000), "bye");  // then EOF
    send_all(p.theirs.get(), "ack");
  });
  EXPECT_EQ(loop.run_until_complete(t()), "ack");
  peer.join();
}

TEST(Socket, DrainWakesAnIdleReaderOnlyWhenItAskedTo) {
  Loop loop;
  Pair p;
  ConnSignals signals;
  auto t = [&]() -> Task<std::pair<int, int>> {
    Socket s(p.ours, nullptr, 0, &signals);
    EXPECT_EQ(s.drain_signal(), &signals.drain);
    EXPECT_EQ(s.abort_signal(), &signals.abort);
    int first = -1, second = -1;
    auto busy_reader = [&]() -> Task<> {
      // Mid-request: not woken by the drain, only by data.
      s.set_wake_on_drain(false);
      IoResult r = co_await s.wait_readable();
      first = r.error;
      s.set_wake_on_drain(true);  // idle again: now the drain applies at once
      char buf[16];
      IoResult r2 = co_await s.read(buf);
      second = r2 ? int(r2.bytes) : r2.error;
    };
    loop.spawn(busy_reader());
    co_await sleep_for(10);
    s.notify_drain();
    co_await sleep_for(30);
    EXPECT_EQ(first, -1) << "the drain woke a reader that had not asked for it";
    send_all(p.theirs.get(), "x");
    while (second == -1) co_await sleep_for(1);
    co_return std::pair{first, second};
  };
  auto [first, second] = loop.run_until_complete(t());
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, ESHUTDOWN);
}

TEST(Socket, AWaitingIdleReaderIsWokenByTheDrain) {
  Loop loop;
  Pair p;
  ConnSignals signals;
  auto t = [&]() -> Task<int> {
    Socket s(p.ours, nullptr, 0, &signals);
    s.set_wake_on_drain(true);
    auto drainer = [&]() -> Task<> {
      co_await sleep_for(10);
      s.notify_drain();
    };
    loop.spawn(drainer());
    IoResult r = co_await s.wait_readable();
    co_return r.error;
  };
  Stopwatch sw;
  EXPECT_EQ(loop.run_until_complete(t()), ESHUTDOWN);
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
}

TEST(Socket, CloseWakesATaskWaitingOnTheSocket) {
  // One task waits to read while another closes the socket (a writer that
  // gives up, an HTTP/2 connection ending): the reader must learn of it, not
  // wait forever.
  Loop loop;
  Pair p;
  auto t = [&]() -> Task<int> {
    Socket s(p.ours, nullptr, 0);
    int error = -1;
    auto reader = [&]() -> Task<> {
      char buf[16];
      IoResult r = co_await s.read(buf);
      error = r.error;
    };
    loop.spawn(reader());
    co_await sleep_for(10);
    s.close();
    EXPECT_FALSE(s.is_open());
    for (int i = 0; i < 300 && error == -1; ++i) co_await sleep_for(10);
    co_return error;
  };
  EXPECT_EQ(loop.run_until_complete(t()), ECANCELED);
  EXPECT_TRUE(wait_closed(p.theirs.get(), 2000));
}

TEST(Socket, TurningWakeOnDrainOnDuringADrainWakesAWaitingReader) {
  Loop loop;
  Pair p;
  ConnSignals signals;
  auto t = [&]() -> Task<int> {
    Socket s(p.ours, nullptr, 0, &signals);
    int error = -1;
    auto reader = [&]() -> Task<> {
      IoResult r = co_await s.wait_readable();
      error = r.error;
    };
    loop.spawn(reader());
    co_await sleep_for(5);
    s.notify_drain();  // busy: not woken
    co_await sleep_for(5);
    EXPECT_EQ(error, -1);
    s.set_wake_on_drain(true);  // now idle, and the drain is on
    for (int i = 0; i < 300 && error == -1; ++i) co_await sleep_for(10);
    co_return error;
  };
  EXPECT_EQ(loop.run_until_complete(t()), ESHUTDOWN);
}
