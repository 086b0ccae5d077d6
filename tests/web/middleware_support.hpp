#pragma once
// For the middleware tests: an App served over real HTTP on loopback for the
// length of a test, and a blocking HTTP/1.1 client that reads the raw bytes
// (no atoll code on the client side).
#include <atoll/http/server.hpp>
#include <atoll/net/server.hpp>

#include <cctype>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/test_support.hpp"

namespace atl::test {

/// An App behind a Server on 127.0.0.1, port chosen by the kernel; stopped
/// (drained) when the object goes.
class HttpTestServer {
 public:
  explicit HttpTestServer(http::App app, http::HttpOptions http = {},
                          net::ServerOptions options = {.loops = 1})
      : server_(std::make_unique<net::Server>(std::move(options),
                                              http::make_handler(std::move(app), http))) {
    server_->start();
  }
  std::uint16_t port() const noexcept { return server_->port(); }
  net::Server& server() noexcept { return *server_; }

 private:
  std::unique_ptr<net::Server> server_;
};

inline std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// A parsed response: status, headers in order (names lowercased), body
/// (de-chunked when it came chunked).
struct HttpReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;

  /// The first value of `name` (lowercase), or "" when absent.
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return {};
  }
  bool has(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return true;
    return false;
  }
  std::size_t count(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& [k, v] : headers) n += k == name;
    return n;
  }
};

/// Parses a status line and header block ("HTTP/1.1 200 OK\r\n...\r\n\r\n").
inline HttpReply parse_head(const std::string& head) {
  HttpReply r;
  std::size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  if (line.size() >= 12) r.status = std::stoi(line.substr(9, 3));
  std::size_t pos = eol + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string::npos || end == pos) break;
    std::string h = head.substr(pos, end - pos);
    std::size_t colon = h.find(':');
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers.emplace_back(lower(h.substr(0, colon)), value);
    pos = end + 2;
  }
  r.chunked = lower(r.header("transfer-encoding")) == "chunked";
  return r;
}

/// Decodes a chunked body; "" plus `ok` false if it is cut short.
inline std::string dechunk(const std::string& raw, bool* ok = nullptr) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    std::size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos) break;
    std::size_t size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
    if (size == 0) {
      if (ok) *ok = true;
      return out;
    }
    if (eol + 2 + size + 2 > raw.size()) break;
    out.append(raw, eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  if (ok) *ok = false;
  return out;
}

/// Sends `raw` (one request that asks for Connection: close) and reads the
/// reply until the server closes.
inline HttpReply http_exchange(std::uint16_t port, const std::string& raw) {
  UniqueFd fd(connect_tcp(port));
  if (!fd || !send_all(fd.get(), raw)) return {};
  std::string all = recv_all(fd.get(), 10'000);
  std::size_t end = all.find("\r\n\r\n");
  if (end == std::string::npos) return {};
  HttpReply r = parse_head(all.substr(0, end + 4));
  std::string rest = all.substr(end + 4);
  r.body = r.chunked ? dechunk(rest) : rest;
  return r;
}

/// A request with `headers` ("Name: value") and an optional body, then the reply.
inline HttpReply request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::vector<std::string>& headers = {},
                         const std::string& body = {}) {
  std::string raw = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
  for (const auto& h : headers) raw += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  raw += "\r\n" + body;
  return http_exchange(port, raw);
}

}  // namespace atl::test
