// atoll: the command line.
//
//   atoll serve --root DIR [--listen ADDR:PORT]...   serve one directory
#include "serve_command.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"atoll: a web server for many sites on one small box"};
  app.require_subcommand(1);
  atl::app::ServeSettings serve;
  auto* cmd = app.add_subcommand("serve", "Run the server (with --root: serve one directory)");
  atl::app::add_serve_options(*cmd, serve);
  CLI11_PARSE(app, argc, argv);
  if (cmd->parsed()) return atl::app::run_serve(serve);
  return 0;
}
