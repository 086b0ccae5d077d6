// echo_floor: the least an epoll echo server can do, as a reference for atoll.
//
// One thread, level-triggered epoll, no coroutines, no timers, no allocation
// per connection: accept, and on each readable event one read() into a
// static buffer and one write() of what came. What atoll's echo costs above
// this, per message, is the price of its runtime.
//
//   echo_floor --port 0      (prints "echo_floor listening on 127.0.0.1:PORT")
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor_common.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--port") port = std::atoi(argv[i + 1]);
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = floor_server::listen_loopback("echo_floor", port, 1024);
  int ep = floor_server::epoll_with(lfd);
  static char buf[16384];
  epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int k = 0; k < n; ++k) {
      int fd = events[k].data.fd;
      if (fd == lfd) {
        floor_server::accept_all(ep, lfd, [](int) {});
        continue;
      }
      ssize_t got = read(fd, buf, sizeof buf);
      if (got < 0 && errno == EAGAIN) continue;
      // A write that would block is treated as fatal: the echo benchmark's
      // messages are far below the socket buffer.
      if (got <= 0 || write(fd, buf, std::size_t(got)) != got) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
      }
    }
  }
}
