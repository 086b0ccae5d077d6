// hello: the smallest HTTP application, and the benchmark's plaintext case.
//
//   hello --port 8080
//   curl http://127.0.0.1:8080/            →  Hello World!
//   curl http://127.0.0.1:8080/json        →  {"message":"Hello, World!"}
//   curl http://127.0.0.1:8080/hello/ada   →  Hello, ada!
//
// Requests pass a request id and an access log (JSON lines on stdout;
// --access-log off for benchmarks) before the router.
#include <atoll/http/server.hpp>
#include <atoll/web/access_log.hpp>
#include <atoll/web/request_id.hpp>
#include <atoll/web/router.hpp>

#include <CLI/CLI.hpp>

using atl::Task;
using atl::http::Conn;

Task<> plaintext(Conn& c) {
  c.set_header("Content-Type", "text/plain");
  co_await c.send(200, "Hello World!");
}

Task<> json(Conn& c) {
  c.set_header("Content-Type", "application/json");
  co_await c.send(200, R"({"message":"Hello, World!"})");
}

Task<> greet(Conn& c) {
  c.set_header("Content-Type", "text/plain; charset=utf-8");
  co_await c.send(200, "Hello, " + std::string(c.param("name")) + "!\n");
}

int main(int argc, char** argv) {
  CLI::App app{"hello: plaintext, JSON and a path parameter through a pipeline"};
  atl::net::ServerOptions options;
  std::string bind = "127.0.0.1", access_log = "-";
  app.add_option("--port", options.port, "TCP port (0 = pick a free one and print it)")
      ->capture_default_str();
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  app.add_option("--loops", options.loops, "event loops (0 = one per core)")->capture_default_str();
  app.add_option("--access-log", access_log, "file, '-' for stdout, 'off' for none")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.bind = {bind};

  atl::web::Router router;
  router.get("/", plaintext)
      .get("/plaintext", plaintext)
      .get("/json", json)
      .get("/hello/:name", greet);
  std::vector<atl::web::Middleware> middleware{atl::web::request_id()};
  if (access_log != "off") middleware.push_back(atl::web::access_log({.path = access_log}));
  try {
    atl::http::serve(options, atl::web::pipeline(std::move(middleware), router));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hello: %s\n", e.what());
    return 1;
  }
}
