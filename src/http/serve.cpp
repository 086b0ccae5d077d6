#include <atoll/http/server.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/signals.hpp>

#include <cstdio>

namespace atl::http {

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
