// Server under descriptor exhaustion: accept(2) fails with EMFILE, the server
// backs off, and serves again once descriptors come back. Runs the server in
// a forked child so its low RLIMIT_NOFILE touches nothing else.
#include <atoll/net/server.hpp>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "net/handlers.hpp"
#include "support/test_support.hpp"

using namespace atl::test;

namespace {

// Reads one '\n'-terminated line from a pipe within `timeout_ms`.
std::string read_line(int fd, int timeout_ms) {
  std::string line;
  Stopwatch sw;
  char c;
  while (sw.elapsed_ms() < timeout_ms) {
    int left = timeout_ms - int(sw.elapsed_ms());
    if (!readable_within(fd, left > 0 ? left : 0)) break;
    if (::read(fd, &c, 1) != 1) break;
    if (c == '\n') return line;
    line += c;
  }
  return line;
}

void write_line(int fd, const std::string& s) {
  std::string line = s + "\n";
  [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

// The child: a server with 64 descriptors at most. Reports its port, then the
// number of accept errors once there are some, then waits for the parent to
// close the control pipe and drains.
[[noreturn]] void child(int report, int control) {
  ::alarm(60);  // never outlive a broken parent
  rlimit rl{64, 64};
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    write_line(report, "setrlimit failed");
    ::_exit(2);
  }
  try {
    atl::net::Server server({.loops = 1}, echo_handler);
    server.start();
    write_line(report, std::to_string(server.port()));
    // One connection comes and goes before descriptors run out. Sanitizer
    // builds need this: UBSan's first check of a type (a connection's
    // destructor) opens a pipe, which fails under EMFILE and is then
    // misreported as an invalid object.
    bool warm = wait_until(
        [&] { return server.info().accepted == 1 && server.info().total() == 0; }, 10'000);
    write_line(report, warm ? "warm" : "not warm");
    bool hit = wait_until([&] { return server.info().accept_errors > 0; }, 20'000);
    write_line(report, std::to_string(hit ? server.info().accept_errors : 0));
    char c;
    while (::read(control, &c, 1) > 0) {
    }
    server.stop();
  } catch (const std::exception& e) {
    write_line(report, std::string("error: ") + e.what());
    ::_exit(3);
  }
  ::_exit(0);
}

}  // namespace

TEST(ServerEmfile, SurvivesDescriptorExhaustionAndServesAgain) {
  int report[2], control[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(control, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(report[0]);
    ::close(control[1]);
    child(report[1], control[0]);
  }
  ::close(report[1]);
  ::close(control[0]);
  UniqueFd from_child(report[0]), to_child(control[1]);

  std::string port_line = read_line(from_child.get(), 10'000);
  int port = std::atoi(port_line.c_str());
  ASSERT_GT(port, 0) << "the child did not start its server: '" << port_line << "'";

  {
    UniqueFd warm(connect_tcp(std::uint16_t(port)));
    ASSERT_TRUE(send_all(warm.get(), "warm"));
    ASSERT_EQ(recv_n(warm.get(), 4), "warm");
  }
  ASSERT_EQ(read_line(from_child.get(), 15'000), "warm");

  // More clients than the child has descriptors: its accept hits EMFILE.
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 80; ++i) {
    clients.emplace_back(connect_tcp(std::uint16_t(port)));
    ASSERT_TRUE(clients.back()) << "connect " << i;
  }
  std::string errors_line = read_line(from_child.get(), 25'000);
  EXPECT_GT(std::atoi(errors_line.c_str()), 0) << "accept never failed: '" << errors_line << "'";

  // The clients that were accepted are served even now.
  ASSERT_TRUE(send_all(clients[0].get(), "early"));
  EXPECT_EQ(recv_n(clients[0].get(), 5, 5000), "early");

  // Descriptors come back: the server drains its backlog and serves a new
  // client, so it survived.
  clients.clear();
  UniqueFd fresh(connect_tcp(std::uint16_t(port)));
  ASSERT_TRUE(fresh);
  ASSERT_TRUE(send_all(fresh.get(), "after EMFILE"));
  EXPECT_EQ(recv_n(fresh.get(), 12, 10'000), "after EMFILE")
      << "the server stopped serving after EMFILE";
  fresh.reset();

  to_child.reset();  // tells the child to stop
  int status = 0;
  bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 15'000);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  EXPECT_TRUE(exited) << "the child did not stop";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}
