#pragma once
// Serving HTTP: the limits of the HTTP/1.1 protocol layer, and the calls that
// run an App over a transport Server.
//
// | limit                        | default  | what it defends against                         |
// |------------------------------|----------|-------------------------------------------------|
// | max_request_line             | 8 KiB    | → 414. Giant URLs that only probe for overflows  |
// | max_header_line              | 8 KiB    | → 431. One oversized header (cookie bombs)       |
// | max_headers                  | 100      | → 431. CPU and memory spent on header floods     |
// | max_header_block             | 16 KiB   | → 431. The whole head must fit one pooled buffer |
// | max_body                     | 1 MiB    | → 413. Uploads filling memory; raise per route   |
// | header_timeout_ms            | 10 s     | → 408 + close. Slowloris: heads sent a byte at a time
// | | keepalive_timeout_ms         | 60 s     | idle connections holding a slot forever         |
// | body_timeout_ms              | 30 s     | → 408. An upload that stops mid-way             |
// | min_upload_rate (bytes/s)    | 1024     | → 408 after upload_grace_ms: slow-drip bodies    |
// | upload_grace_ms              | 5 s      | lets a slow start (TCP slow start, mobile) pass  |
// | max_requests_per_connection  | 10000    | bounds per-connection state drift; spreads load |
// | write_timeout_ms             | 60 s     | a client that stops reading its response         |
#include <atoll/http/conn.hpp>
#include <atoll/net/server.hpp>

#include <cstddef>
#include <cstdint>

namespace atl::http {

struct HttpOptions {
  std::size_t max_request_line = 8 * 1024;
  std::size_t max_header_line = 8 * 1024;
  std::size_t max_headers = 100;
  std::size_t max_header_block = 16 * 1024;
  std::size_t max_body = 1024 * 1024;
  std::int64_t header_timeout_ms = 10'000;
  std::int64_t keepalive_timeout_ms = 60'000;
  std::int64_t body_timeout_ms = 30'000;
  std::size_t min_upload_rate = 1024;
  std::int64_t upload_grace_ms = 5'000;
  std::size_t max_requests_per_connection = 10'000;
  std::int64_t write_timeout_ms = 60'000;
};

/// Speaks HTTP/1.1 on one connection until it closes, passing each request to `app`.
Task<> serve_http1(net::Socket& socket, const App& app, const HttpOptions& options);

/// A transport handler that serves `app` over HTTP/1.1 (HTTP/2 by ALPN later).
net::Handler make_handler(App app, HttpOptions options = {});

/// What a server sends to plain HTTP that arrives on a TLS port (for
/// net::TlsOptions::plaintext_reply): a 400 saying to use https://.
std::string plaintext_on_tls_reply();

/// Runs `app` on a server until SIGINT or SIGTERM, then drains and returns.
/// Prints the bound addresses on stdout. Throws if a listener cannot be made.
void serve(net::ServerOptions server, App app, HttpOptions options = {});

}  // namespace atl::http
