// hello: the smallest HTTP application, and the benchmark's plaintext case.
//
//   hello --port 8080          →  curl http://127.0.0.1:8080/  →  Hello World!
#include <atoll/http/server.hpp>

#include <CLI/CLI.hpp>

using atl::Task;
using atl::http::Conn;

Task<> hello(Conn& c) {
  c.set_header("Content-Type", "text/plain");
  co_await c.send(200, "Hello World!");
}

int main(int argc, char** argv) {
  CLI::App app{"hello: answers every request with 'Hello World!'"};
  atl::net::ServerOptions options;
  std::string bind = "127.0.0.1";
  app.add_option("--port", options.port, "TCP port (0 = pick a free one and print it)")->capture_default_str();
  app.add_option("--bind", bind, "address to listen on")->capture_default_str();
  app.add_option("--loops", options.loops, "event loops (0 = one per core)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  options.bind = {bind};
  try {
    atl::http::serve(options, hello);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hello: %s\n", e.what());
    return 1;
  }
}
