#pragma once
// Small connection handlers shared by the transport tests, and a helper to
// run a Server for the length of a test.
#include <atoll/net/buffer.hpp>
#include <atoll/net/server.hpp>
#include <atoll/runtime/stop.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace atl::test {

/// Sends back every byte (as examples/echo): waits with no buffer, and lets a
/// drain close it while idle.
inline runtime::Task<> echo_handler(net::Socket& s) {
  s.set_wake_on_drain(true);
  for (;;) {
    if (auto ready = co_await s.wait_readable(); !ready) co_return;
    net::Buffer buf = net::Buffer::lease();
    auto got = co_await s.read(buf.span());
    if (!got || got.eof()) co_return;
    if (!co_await s.write(std::span<const char>(buf.data(), got.bytes))) co_return;
  }
}

/// What a CommandHandler saw, for tests to wait on from their own thread.
struct CommandLog {
  std::atomic<int> slow_started{0};
  std::atomic<int> slow_finished{0};
  std::atomic<int> slow_aborted{0};  // the abort signal cut a sleep short
  std::atomic<int> connections_ended{0};
};

/// A line protocol for the server tests; one command per '\n'-terminated line:
///   echo TEXT   replies TEXT
///   slow MS     sleeps MS (cut short by the server's abort), replies "slow-done"
///   block MS    blocks the loop for MS (the mistake the watchdog catches), replies "blocked"
///   throw       throws from the handler
/// Between commands the connection is idle and a drain closes it at once.
struct CommandHandler {
  CommandLog* log;

  runtime::Task<> operator()(net::Socket& s) const {
    CommandLog* l = log;  // copied into the frame: the handler object may move
    struct Ended {
      CommandLog* l;
      ~Ended() { ++l->connections_ended; }
    } ended{l};
    std::string pending;
    for (;;) {
      auto eol = pending.find('\n');
      if (eol == std::string::npos) {
        s.set_wake_on_drain(true);  // idle: between commands
        if (auto ready = co_await s.wait_readable(); !ready) co_return;
        s.set_wake_on_drain(false);
        net::Buffer buf = net::Buffer::lease();
        auto got = co_await s.read(buf.span());
        if (!got || got.eof()) co_return;
        pending.append(buf.data(), got.bytes);
        continue;
      }
      std::string line = pending.substr(0, eol);
      pending.erase(0, eol + 1);
      std::string reply;
      if (line.rfind("echo ", 0) == 0) {
        reply = line.substr(5);
      } else if (line.rfind("slow ", 0) == 0) {
        ++l->slow_started;
        bool full = co_await runtime::sleep_for(std::atoll(line.c_str() + 5), *s.abort_signal());
        if (!full) {
          ++l->slow_aborted;
          co_return;
        }
        ++l->slow_finished;
        reply = "slow-done";
      } else if (line.rfind("block ", 0) == 0) {
        ::usleep(useconds_t(std::atoi(line.c_str() + 6)) * 1000);
        reply = "blocked";
      } else if (line == "throw") {
        throw std::runtime_error("the handler was told to throw");
      } else {
        reply = "unknown command";
      }
      reply += '\n';
      if (!co_await s.write(std::string_view(reply))) co_return;
    }
  }
};

/// Starts a server with `handler`; the Server's destructor drains it.
inline std::unique_ptr<net::Server> start_server(net::ServerOptions options, net::Handler handler) {
  auto server = std::make_unique<net::Server>(std::move(options), std::move(handler));
  server->start();
  return server;
}

}  // namespace atl::test
