// echo: sends back every byte it receives (RFC 862), over TCP, TLS or a Unix
// socket. The first handler of any socket server, and the transport
// benchmark's subject.
//
//   echo --port 7000
//   echo --port 7000 --unix /tmp/echo.sock
//   echo --port 7443 --tls-cert cert.pem --tls-key key.pem
#include <atoll/net/buffer.hpp>
#include <atoll/net/server.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/signals.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>

using atl::Task;
using atl::net::Buffer;
using atl::net::Socket;

Task<> echo(Socket& s) {
  s.set_wake_on_drain(true);  // idle between messages: a drain may close us at once
  for (;;) {
    // Wait with no buffer: an idle echo connection costs only its frame.
    if (auto ready = co_await s.wait_readable(); !ready) co_return;
    Buffer buf = Buffer::lease();
    auto got = co_await s.read(buf.span());
    if (!got || got.eof()) co_return;
    if (!co_await s.write(std::span<const char>(buf.data(), got.bytes))) co_return;
  }
}

int main(int argc, char** argv) {
  CLI::App app{"echo: returns every byte it receives (RFC 862)"};
  atl::net::ServerOptions options;
  std::string tls_cert, tls_key, bind = "127.0.0.1";
  app.add_option("--port", options.port, "TCP port (0 = pick a free one and print it)")
      ->capture_default_str();
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  app.add_option("--unix", options.unix_path, "also listen on this Unix socket path");
  app.add_option("--tls-cert", tls_cert, "PEM certificate chain: serve TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "PEM private key for --tls-cert")->check(CLI::ExistingFile);
  app.add_option("--loops", options.loops, "event loops (0 = one per core)")->capture_default_str();
  app.add_option("--max-connections", options.max_connections,
                 "connection cap (0 = from the descriptor limit)");
  CLI11_PARSE(app, argc, argv);
  if (tls_cert.empty() != tls_key.empty()) {
    std::fprintf(stderr, "echo: --tls-cert and --tls-key go together\n");
    return 2;
  }
  options.bind = {bind};
  if (!tls_cert.empty())
    options.tls = atl::net::TlsOptions{.cert_file = tls_cert, .key_file = tls_key};

  atl::runtime::block_termination_signals();
  atl::net::Server server(options, echo);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo: %s\n", e.what());
    return 1;
  }
  for (auto& ep : server.endpoints()) std::printf("echo listening on %s\n", ep.to_string().c_str());
  std::fflush(stdout);
  int sig = atl::runtime::wait_for_signal();
  atl::log::info("echo: signal {}, draining", sig);
  server.stop();
  return 0;
}
