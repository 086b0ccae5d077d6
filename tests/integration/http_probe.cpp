// http_probe: a test-only server that reports what it received and drives
// every part of the Conn API, so the integration tests can check the HTTP/1.1
// layer from the outside with real clients.
//
//   http_probe --port 0 --header-timeout-ms 300   → "listening on http://127.0.0.1:PORT"
//
// Routes (by path; anything else is 404):
//   /echo[/…]    the request as JSON: method, target, paths, query, version, host, headers
//   /body        reads the whole body: {"length":N,"sha256":"…"}; ?raw=1 returns the body,
//                ?delay=ms waits before reading, ?headers=1 adds the headers seen after it
//   /stream      chunked response: ?n=3 chunks "chunk-0\n"…, ?delay=ms between them
//   /hints       103 Early Hints (Link) then 200
//   /throw       throws before responding (→ 500)
//   /throw-late  starts a stream, then throws (→ connection closed mid-response)
//   /bad-header  sets a header holding CR LF (refused, never sent → 500)
//   /limit       body limit 10 bytes, then reads the body (→ 413 if larger)
//   /file        send_file of --file; ?offset=&length= sends a slice by descriptor
//   /slow        sleeps ?ms= (default 200) on the loop, then answers
//   /close       answers and asks for the connection to close
//   /none        returns without answering
//   /status      answers ?code= with an empty body
#include <atoll/http/server.hpp>
#include <atoll/runtime/loop.hpp>
#include <atoll/runtime/stop.hpp>
#include <atoll/web/access_log.hpp>
#include <atoll/web/pipeline.hpp>

#include <openssl/evp.h>
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>

using atl::Task;
using atl::http::Conn;

namespace {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c >= 0x7f) {
      // Bytes, not code points: the test decodes \u00XX back to the byte.
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

long query_number(Conn& c, std::string_view name, long fallback) {
  auto v = c.query().get(name);
  return v ? std::stol(std::string(*v)) : fallback;
}

Task<> echo(Conn& c) {
  std::string j =
      "{\"method\":" + json_string(c.method()) + ",\"target\":" + json_string(c.target()) +
      ",\"path\":" + json_string(c.path()) + ",\"raw_path\":" + json_string(c.raw_path()) +
      ",\"query_string\":" + json_string(c.query_string()) +
      ",\"version\":" + json_string(c.version()) + ",\"host\":" + json_string(c.host()) +
      ",\"has_body\":" + (c.has_body() ? "true" : "false") + ",\"query\":[";
  bool first = true;
  for (const auto& [k, v] : c.query().all()) {
    j += (first ? "[" : ",[") + json_string(k) + "," + json_string(v) + "]";
    first = false;
  }
  j += "],\"headers\":[";
  first = true;
  for (const auto& h : c.headers()) {
    j += (first ? "[" : ",[") + json_string(h.name) + "," + json_string(h.value) + "]";
    first = false;
  }
  j += "]}\n";
  c.set_header("Content-Type", "application/json");
  co_await c.send(200, j);
}

Task<> body(Conn& c) {
  // A delay before reading shows when "100 Continue" goes out.
  if (long delay = query_number(c, "delay", 0); delay > 0) co_await atl::runtime::sleep_for(delay);
  std::string data = co_await c.read_body();
  if (c.query().get("raw")) {
    c.set_header("Content-Type", "application/octet-stream");
    co_await c.send(200, data);
    co_return;
  }
  std::string j =
      "{\"length\":" + std::to_string(data.size()) + ",\"sha256\":\"" + sha256_hex(data) + "\"";
  if (c.query().get("headers")) {  // the headers as seen after the body (and its trailers)
    j += ",\"headers\":[";
    bool first = true;
    for (const auto& h : c.headers()) {
      j += (first ? "[" : ",[") + json_string(h.name) + "," + json_string(h.value) + "]";
      first = false;
    }
    j += "]";
  }
  c.set_header("Content-Type", "application/json");
  co_await c.send(200, j + "}\n");
}

Task<> stream(Conn& c) {
  long n = query_number(c, "n", 3);
  long delay = query_number(c, "delay", 0);
  c.set_header("Content-Type", "text/plain");
  co_await c.begin_stream(200);
  for (long i = 0; i < n; ++i) {
    if (delay > 0) co_await atl::runtime::sleep_for(delay);
    co_await c.write_chunk("chunk-" + std::to_string(i) + "\n");
  }
  co_await c.end_stream();
}

Task<> file(Conn& c, const std::string& path) {
  if (path.empty()) {
    co_await c.send(404, "no --file given\n");
    co_return;
  }
  auto offset = c.query().get("offset");
  if (!offset) {
    co_await c.send_file(200, path);
    co_return;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  co_await c.send_file(200, fd, off_t(std::stol(std::string(*offset))),
                       std::uint64_t(query_number(c, "length", 0)));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"http_probe: a test server for the HTTP/1.1 layer"};
  atl::net::ServerOptions server;
  atl::http::HttpOptions http;
  std::string file_path;
  std::string access_log;
  server.loops = 1;
  cli.add_option("--port", server.port, "TCP port (0 = pick one and print it)");
  cli.add_option("--loops", server.loops, "event loops");
  cli.add_option("--file", file_path, "the file /file sends");
  cli.add_option("--access-log", access_log, "write an access log (JSON lines) to this file");
  cli.add_option("--max-request-line", http.max_request_line);
  cli.add_option("--max-header-line", http.max_header_line);
  cli.add_option("--max-headers", http.max_headers);
  cli.add_option("--max-body", http.max_body);
  cli.add_option("--header-timeout-ms", http.header_timeout_ms);
  cli.add_option("--keepalive-timeout-ms", http.keepalive_timeout_ms);
  cli.add_option("--body-timeout-ms", http.body_timeout_ms);
  cli.add_option("--max-requests", http.max_requests_per_connection);
  CLI11_PARSE(cli, argc, argv);

  auto app = [file_path](Conn& c) -> Task<> {
    const std::string& p = c.path();
    if (p == "/echo" || p.starts_with("/echo/")) {
      co_await echo(c);
    } else if (p == "/body") {
      co_await body(c);
    } else if (p == "/stream") {
      co_await stream(c);
    } else if (p == "/hints") {
      // (A named vector: GCC 12 rejects a braced list of literals in a coroutine.)
      std::vector<atl::http::Header> hints = {
          {"Link", std::string_view("</style.css>; rel=preload; as=style")}};
      co_await c.inform(103, hints);
      co_await c.send(200, "hinted\n");
    } else if (p == "/throw") {
      throw std::runtime_error("probe: /throw");
    } else if (p == "/throw-late") {
      co_await c.begin_stream(200);
      co_await c.write_chunk("partial\n");
      throw std::runtime_error("probe: /throw-late");
    } else if (p == "/bad-header") {
      c.set_header("X-Injected", "a\r\nSet-Cookie: evil=1");
      co_await c.send(200, "must not be sent\n");
    } else if (p == "/limit") {
      c.set_body_limit(10);
      std::string data = co_await c.read_body();
      co_await c.send(200, std::to_string(data.size()) + "\n");
    } else if (p == "/file") {
      co_await file(c, file_path);
    } else if (p == "/slow") {
      co_await atl::runtime::sleep_for(query_number(c, "ms", 200));
      co_await c.send(200, "slow\n");
    } else if (p == "/close") {
      c.close_after_response();
      co_await c.send(200, "closing\n");
    } else if (p == "/none") {
      co_return;  // no response at all: the server must answer 500 itself
    } else if (p == "/events") {
      // An event stream: a tick every `ms` until the server drains, then "bye".
      long ms = query_number(c, "ms", 50);
      c.set_header("Content-Type", "text/event-stream");
      co_await c.begin_stream(200);
      for (long i = 0;; ++i) {
        co_await c.write_chunk("data: tick " + std::to_string(i) + "\n\n");
        if (!c.drain_signal() || !co_await atl::runtime::sleep_for(ms, *c.drain_signal())) break;
      }
      co_await c.write_chunk("data: bye\n\n");
      co_await c.end_stream();
    } else if (p == "/upgrade") {
      // The x-echo protocol after a 101: every byte comes back; "bye" ends it.
      std::string_view asked = c.header("upgrade");
      if (asked.find("x-echo") == std::string_view::npos) {
        c.set_header("Upgrade", "x-echo");
        co_await c.send(426, "Upgrade Required: x-echo\n");
        co_return;
      }
      c.upgrade("x-echo", {{"X-Probe", "upgraded"}}, [](Conn::ByteStream& s) -> Task<> {
        std::string seen;
        for (;;) {
          auto piece = co_await s.read();
          if (piece.empty()) break;
          seen.append(piece.data(), piece.size());
          if (!co_await s.write(std::string_view(piece.data(), piece.size()))) break;
          if (seen.find("bye") != std::string::npos) break;
        }
      });
    } else if (p == "/status") {
      co_await c.send(int(query_number(c, "code", 200)), "");
    } else {
      co_await c.send(404, "Not Found\n");
    }
  };
  try {
    if (access_log.empty())
      atl::http::serve(server, app, http);
    else
      atl::http::serve(server,
                       atl::web::pipeline({atl::web::access_log({.path = access_log})}, app), http);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_probe: %s\n", e.what());
    return 1;
  }
}
