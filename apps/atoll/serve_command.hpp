#pragma once
// `atoll serve`: its settings, its config file, and how they are run.
#include <atoll/net/server.hpp>
#include <atoll/web/pipeline.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace atl::app {

struct ServeSettings {
  std::string config;  // TOML file with the same keys
  std::string root;    // quick mode: one directory, no database
  std::vector<std::string> listen = {"127.0.0.1:8080"};
  std::string admin_listen = "127.0.0.1:8081";
  std::string data = "atoll-data";
  std::string base_domain = "localhost";
  std::string demo_sites;  // published when the data directory is made; "" = find examples/sites
  bool demo = true;        // --no-demo: none
  unsigned workers = 0;    // 0 = the default, 1; see host_serve.cpp
  unsigned loops = 0;
  std::size_t max_connections = 0;
  std::size_t max_upload = 256 * 1024 * 1024;  // admin API; see host::AdminOptions::max_upload
  std::string tls_cert;
  std::string tls_key;
  std::string admin_tls_cert;  // the admin API over HTTPS (its token never crosses in clear)
  std::string admin_tls_key;
  /// [[certificates]] cert = "...", key = "...": more certificates for SNI,
  /// chosen by the names they carry (config file only; re-read on reload).
  struct Certificate {
    std::string cert, key;
    bool operator==(const Certificate&) const = default;
  };
  std::vector<Certificate> certificates;
  std::string cache_control;
  bool precompressed = true;
  std::string access_log = "-";
  std::string access_log_format = "json";
  /// Locked by the master for its life (runtime/pid_file.hpp): what `atoll
  /// reload` and `upgrade` signal. "" = DATA/atoll.pid in host mode, none in
  /// quick mode.
  std::string pid_file;
  /// The settings given, as config keys ("data", "root", ...), by a flag or
  /// the config file: a mode refuses one it cannot honour (mode_conflict).
  std::set<std::string> given;
};

/// Why these settings cannot run together ("--data is ..."), or "".
std::string mode_conflict(const ServeSettings& s);

void add_serve_options(CLI::App& cmd, ServeSettings& s);
/// Applies the --config file to every setting not given as a flag (flags
/// win). Throws std::invalid_argument "FILE:LINE:COL: message".
void apply_config_file(CLI::App& cmd, ServeSettings& s);
/// The request-id and access-log middleware the settings ask for.
std::vector<web::Middleware> logging(const ServeSettings& s);
/// TLS settings for a listener: HTTP/1.1 by ALPN, a 400 for plain HTTP.
net::TlsOptions tls_options(const std::string& cert, const std::string& key);
/// Where the demo sites are: --demo-sites, ./examples/sites, or beside the binary.
std::string find_demo_sites(const ServeSettings& s);

/// Runs until SIGINT/SIGTERM; returns the process exit code. `reload`
/// re-reads the settings (flags + config file) for SIGHUP.
int run_serve(const ServeSettings& s, std::function<bool(ServeSettings&)> reload = {},
              std::vector<std::string> argv = {});

}  // namespace atl::app
