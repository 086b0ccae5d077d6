// daytime: tells the time and hangs up (RFC 867). The smallest handler that
// does something: one write, one close.
//
//   daytime --port 1313
#include <atoll/net/server.hpp>
#include <atoll/runtime/signals.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>

using atl::Task;
using atl::net::Socket;

Task<> daytime(Socket& s) {
  std::time_t now = std::time(nullptr);
  std::tm utc;
  gmtime_r(&now, &utc);
  char line[64];
  std::size_t n = std::strftime(line, sizeof line, "%A, %B %d, %Y %H:%M:%S-UTC\r\n", &utc);
  co_await s.write(std::span<const char>(line, n));
}

int main(int argc, char** argv) {
  CLI::App app{"daytime: sends the date and time, then closes (RFC 867)"};
  atl::net::ServerOptions options;
  std::string bind = "127.0.0.1";
  app.add_option("--port", options.port, "TCP port (0 = pick a free one and print it)")
      ->capture_default_str();
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  app.add_option("--loops", options.loops, "event loops (0 = one per core)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.bind = {bind};

  atl::runtime::block_termination_signals();
  atl::net::Server server(options, daytime);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "daytime: %s\n", e.what());
    return 1;
  }
  for (auto& ep : server.endpoints())
    std::printf("daytime listening on %s\n", ep.to_string().c_str());
  std::fflush(stdout);
  atl::runtime::wait_for_signal();
  server.stop();
  return 0;
}
