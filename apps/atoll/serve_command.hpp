#pragma once
// `atoll serve`: its settings and how they are run.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace atl::app {

struct ServeSettings {
  std::string root;
  std::vector<std::string> listen = {"127.0.0.1:8080"};
  unsigned loops = 0;
  std::size_t max_connections = 0;
  std::string tls_cert;
  std::string tls_key;
  std::string cache_control;
  bool precompressed = true;
  std::string access_log = "-";
  std::string access_log_format = "json";
};

void add_serve_options(CLI::App& cmd, ServeSettings& s);
/// Runs until SIGINT/SIGTERM; returns the process exit code.
int run_serve(const ServeSettings& s);

}  // namespace atl::app
