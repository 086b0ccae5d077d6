#include "serve_command.hpp"

#include <atoll/http/server.hpp>
#include <atoll/net/address.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/signals.hpp>
#include <atoll/web/access_log.hpp>
#include <atoll/web/request_id.hpp>
#include <atoll/web/static_files.hpp>

#include <cstdio>

namespace atl::app {

void add_serve_options(CLI::App& cmd, ServeSettings& s) {
  cmd.add_option("--root", s.root, "Serve this directory (quick mode: no database)")->check(CLI::ExistingDirectory);
  cmd.add_option("--listen", s.listen, "Address to listen on, ADDR:PORT or unix:PATH (repeatable)")
      ->capture_default_str();
  cmd.add_option("--loops", s.loops, "Event loops (threads); 0 = one per core")->capture_default_str();
  cmd.add_option("--max-connections", s.max_connections, "Connection cap; 0 = from the descriptor limit");
  cmd.add_option("--tls-cert", s.tls_cert, "PEM certificate chain: serve HTTPS")->check(CLI::ExistingFile);
  cmd.add_option("--tls-key", s.tls_key, "PEM private key for --tls-cert")->check(CLI::ExistingFile);
  cmd.add_option("--cache-control", s.cache_control, "Cache-Control header for every file (default: none)");
  cmd.add_flag("!--no-precompressed", s.precompressed, "Ignore .br/.zst/.gz siblings");
  cmd.add_option("--access-log", s.access_log, "Access log file, '-' for stdout, 'off' for none")
      ->capture_default_str();
  cmd.add_option("--access-log-format", s.access_log_format, "json or combined")
      ->check(CLI::IsMember({"json", "combined"}))
      ->capture_default_str();
}

int run_serve(const ServeSettings& s) {
  if (s.root.empty()) {
    std::fprintf(stderr,
                 "atoll serve: --root DIR is required for now (the multi-tenant host, with its "
                 "database and admin API, is not built yet)\n");
    return 2;
  }
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    std::fprintf(stderr, "atoll serve: --tls-cert and --tls-key go together\n");
    return 2;
  }
  net::ServerOptions options;
  options.bind.clear();
  options.loops = s.loops;
  options.max_connections = s.max_connections;
  std::uint16_t port = 0;
  for (const auto& text : s.listen) {
    try {
      auto ep = net::Endpoint::parse(text);
      if (ep.is_unix()) {
        options.unix_path = ep.host();
        continue;
      }
      if (port && ep.port() != port) {
        std::fprintf(stderr, "atoll serve: --listen %s: every TCP address must use the same port (%u)\n",
                     text.c_str(), port);
        return 2;
      }
      port = ep.port();
      options.bind.push_back(ep.host());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "atoll serve: --listen %s\n", e.what());
      return 2;
    }
  }
  options.port = port;
  if (!s.tls_cert.empty()) {
    options.tls = net::TlsOptions{.cert_file = s.tls_cert, .key_file = s.tls_key, .alpn = {"http/1.1"}};
  }
  web::StaticOptions files{.root = s.root, .precompressed = s.precompressed, .cache_control = s.cache_control};
  try {
    std::vector<web::Middleware> middleware{web::request_id()};
    if (s.access_log != "off") {
      web::AccessLogOptions log{.path = s.access_log};
      if (s.access_log_format == "combined") log.format = web::AccessLogOptions::Format::combined;
      middleware.push_back(web::access_log(log));
    }
    http::serve(options, web::pipeline(std::move(middleware), web::static_files(files)));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atoll serve: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace atl::app
