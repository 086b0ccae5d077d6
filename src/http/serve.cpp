#include <atoll/http/server.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/signals.hpp>

#include <cstdio>

namespace atl::http {

std::string plaintext_on_tls_reply() {
  static constexpr std::string_view body =
      "400 Bad Request: this port speaks HTTPS, and the request came in plain HTTP. Use an "
      "https:// URL.\n";
  return "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
}

void serve(net::ServerOptions server_options, App app, HttpOptions options) {
  runtime::block_termination_signals();
  net::Server server(std::move(server_options), make_handler(std::move(app), options));
  server.start();
  for (const auto& ep : server.endpoints())
    std::printf("listening on http://%s\n", ep.to_string().c_str());
  std::fflush(stdout);
  int sig = runtime::wait_for_signal();
  log::info("signal {}: draining (up to {} ms)", sig, server.options().drain_timeout_ms);
  server.stop();
}

}  // namespace atl::http
