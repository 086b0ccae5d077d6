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
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(std::uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0 ||
      listen(lfd, 1024) < 0) {
    std::fprintf(stderr, "echo_floor: cannot listen: %s\n", std::strerror(errno));
    return 1;
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("echo_floor listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  static char buf[16384];
  epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int k = 0; k < n; ++k) {
      int fd = events[k].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
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
