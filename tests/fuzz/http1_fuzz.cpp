// http1_fuzz: arbitrary bytes through the HTTP/1.1 parser and the Conn.
//
// Each input is one client connection: the bytes go into one end of a
// socketpair, followed by a half-close, and the other end is served by
// serve_http1() on a real event loop, exactly as the server would serve a TCP
// connection. A second task reads every response byte until the server
// closes. The app behind it reaches the Conn API by path (bodies, streams,
// 103, files, throws, upgrades, limits), so inputs that form requests drive
// the response side too. Crashes, sanitizer reports, hangs (libFuzzer's
// -timeout) and a response that does not start with a status line are bugs.
//
//   cmake --preset fuzz && cmake --build build/fuzz && tests/fuzz/run.sh 60
#include <atoll/http/server.hpp>
#include <atoll/net/socket.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/loop.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

using atl::Task;
using atl::http::Conn;

namespace {

// Small limits, so that inputs of a few KiB reach every refusal path.
atl::http::HttpOptions fuzz_options() {
  atl::http::HttpOptions o;
  o.max_request_line = 1024;
  o.max_header_line = 1024;
  o.max_headers = 24;
  o.max_header_block = 4096;
  o.max_body = 8192;
  o.max_requests_per_connection = 64;
  return o;
}

// A file for send_file: longer than the inline limit (16 KiB), so both the
// pread and the sendfile paths are reachable.
int make_file() {
  int fd = ::memfd_create("http1_fuzz", MFD_CLOEXEC);
  std::string data(20000, 'f');
  if (fd < 0 || ::write(fd, data.data(), data.size()) != ssize_t(data.size())) std::abort();
  return fd;
}

std::uint64_t query_number(Conn& c, std::string_view name, std::uint64_t fallback) {
  auto v = c.query().get(name);
  return v ? std::strtoull(std::string(*v).c_str(), nullptr, 10) : fallback;
}

Task<> app(Conn& c) {
  static const int file = make_file();
  const std::string& p = c.path();
  std::size_t seen = c.query().all().size();
  for (const auto& h : c.headers()) seen += h.value.size();
  if (p.starts_with("/body")) {
    std::string body = co_await c.read_body();
    co_await c.send(200, std::to_string(body.size() + seen));
  } else if (p.starts_with("/chunks")) {
    std::size_t n = 0;
    for (;;) {
      auto piece = co_await c.read_body_chunk();
      if (piece.empty()) break;
      n += piece.size();
    }
    co_await c.send(200, std::to_string(n));
  } else if (p.starts_with("/stream")) {
    c.set_header("X-Path", "stream");
    co_await c.begin_stream(200);
    co_await c.write_chunk("first");
    co_await c.write_chunk(c.target());
    co_await c.end_stream();
  } else if (p.starts_with("/hints")) {
    std::vector<atl::http::Header> hints = {{"Link", std::string_view("</a.css>; rel=preload")}};
    co_await c.inform(103, hints);
    co_await c.send(200, "hinted");
  } else if (p.starts_with("/file")) {
    // Offsets past the end make the file "shrink under us": a path to fuzz too.
    co_await c.send_file(200, file, off_t(query_number(c, "o", 0) % 30000),
                         query_number(c, "n", 20000) % 30000);
  } else if (p.starts_with("/throw")) {
    throw std::runtime_error("fuzz: throw");
  } else if (p.starts_with("/late")) {
    co_await c.begin_stream(200);
    co_await c.write_chunk("partial");
    throw std::runtime_error("fuzz: late throw");
  } else if (p.starts_with("/upgrade")) {
    if (c.header("upgrade").empty()) {
      co_await c.send(426, "Upgrade Required\n");
      co_return;
    }
    // Echoes what follows the switch, the bytes sent with the request first.
    c.upgrade(c.header("upgrade"), {{"X-Fuzz", "1"}}, [](Conn::ByteStream& s) -> Task<> {
      for (int i = 0; i < 4; ++i) {
        auto piece = co_await s.read();
        if (piece.empty()) break;
        if (!co_await s.write(std::string_view(piece.data(), piece.size()))) break;
      }
    });
  } else if (p.starts_with("/limit")) {
    c.set_body_limit(8);
    std::string body = co_await c.read_body();
    co_await c.send(200, body);
  } else if (p.starts_with("/close")) {
    c.close_after_response();
    co_await c.send(200, "bye");
  } else if (p.starts_with("/none")) {
    co_return;
  } else {
    c.set_header("Content-Type", "text/plain");
    co_await c.send(200, std::string(c.method()) + " " + p);
  }
}

struct Session {
  atl::runtime::Loop& loop;
  int tasks_left = 2;
  std::string response;
  void task_done() {
    if (--tasks_left == 0) loop.stop();
  }
};

sockaddr unix_peer() {
  sockaddr sa{};
  sa.sa_family = AF_UNIX;
  return sa;
}

Task<> server_side(Session& s, int fd) {
  static const atl::http::HttpOptions options = fuzz_options();
  static const atl::http::App handler = app;
  {
    sockaddr peer = unix_peer();
    atl::net::Socket sock(fd, &peer, sizeof peer);
    try {
      co_await atl::http::serve_http1(sock, handler, options);
    } catch (...) {
      __builtin_trap();  // the connection boundary must contain every failure
    }
  }  // closed here: the client reads EOF
  s.task_done();
}

Task<> client_side(Session& s, int fd) {
  static char buf[65536];
  {
    sockaddr peer = unix_peer();
    atl::net::Socket sock(fd, &peer, sizeof peer);
    for (;;) {
      auto r = co_await sock.read({buf, sizeof buf});
      if (!r || r.eof()) break;
      s.response.append(buf, r.bytes);
    }
  }
  s.task_done();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::signal(SIGPIPE, SIG_IGN);
  atl::log::set_threshold(atl::log::Level::error);  // a throwing handler is logged at warn
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  // The whole input is written before the loop runs (run.sh caps inputs at
  // 64 KiB, well inside a Unix socket's buffer), then half-closed: the server
  // reads it as one client's bytes followed by EOF.
  std::size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fds[1], data + off, size - off);
    if (n <= 0) break;  // the buffer is full: the rest is dropped
    off += std::size_t(n);
  }
  ::shutdown(fds[1], SHUT_WR);

  atl::runtime::Loop loop;
  Session session{loop};
  loop.spawn(server_side(session, fds[0]));
  loop.spawn(client_side(session, fds[1]));
  loop.run();
  if (session.tasks_left != 0) __builtin_trap();
  // Whatever the input, the server's bytes begin with a status line.
  if (!session.response.empty() && !session.response.starts_with("HTTP/1.1 ")) __builtin_trap();
  return 0;
}
