#pragma once
// What the floor servers (echo_floor, http_floor) share: a listening socket
// on loopback that announces its port, and the epoll side of accepting.
// Stand-alone on purpose: no atoll code, so a floor measures only the
// kernel and the few lines of each server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace floor_server {

/// Listens on 127.0.0.1:port (0: any) and prints "NAME listening on
/// 127.0.0.1:PORT", which the benchmark scripts read; exits on failure.
inline int listen_loopback(const char* name, int port, int backlog) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(std::uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0 ||
      listen(lfd, backlog) < 0) {
    std::fprintf(stderr, "%s: cannot listen: %s\n", name, std::strerror(errno));
    std::exit(1);
  }
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("%s listening on 127.0.0.1:%d\n", name, ntohs(addr.sin_port));
  std::fflush(stdout);
  return lfd;
}

/// An epoll instance watching `lfd` (level-triggered), its data the fd.
inline int epoll_with(int lfd) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  return ep;
}

/// Accepts every pending connection into `ep` (TCP_NODELAY, non-blocking),
/// calling on_accept(fd) for each.
template <class F>
void accept_all(int ep, int lfd, F&& on_accept) {
  for (;;) {
    int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    on_accept(c);
    epoll_event cev{};
    cev.events = EPOLLIN;
    cev.data.fd = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
  }
}

}  // namespace floor_server
