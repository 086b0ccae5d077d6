#include "serve_command.hpp"

#include <atoll/host/admin.hpp>
#include <atoll/host/host.hpp>
#include <atoll/host/publish.hpp>
#include <atoll/http/server.hpp>
#include <atoll/net/address.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/signals.hpp>
#include <atoll/web/access_log.hpp>
#include <atoll/web/request_id.hpp>
#include <atoll/web/static_files.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <set>
#include <span>
#include <utility>

namespace atl::app {

void add_serve_options(CLI::App& cmd, ServeSettings& s) {
  cmd.add_option("--config", s.config, "TOML file with these settings (flags win)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--root", s.root,
                 "Serve this one directory (quick mode: no database, no admin API)")
      ->check(CLI::ExistingDirectory);
  cmd.add_option("--listen", s.listen, "Address to listen on, ADDR:PORT or unix:PATH (repeatable)")
      ->capture_default_str();
  cmd.add_option("--admin-listen", s.admin_listen, "Admin API address ('off' for none)")
      ->capture_default_str();
  cmd.add_option("--data", s.data, "Data directory: database, content store, admin token")
      ->capture_default_str();
  cmd.add_option("--base-domain", s.base_domain, "Sites answer at NAME.<base domain>")
      ->capture_default_str();
  cmd.add_option("--demo-sites", s.demo_sites,
                 "Directory of sites published when the data directory is created (default: "
                 "examples/sites); never again, so deleting them sticks");
  cmd.add_flag("!--no-demo", s.demo, "Create the data directory without the demo sites");
  cmd.add_option(
         "--workers", s.workers,
         "Worker processes under a supervising master (default 1, with a loop per core); they "
         "share /metrics counters and see an admin-API deploy at once")
      ->capture_default_str();
  cmd.add_option("--loops", s.loops,
                 "Event loops (threads) per worker; 0 = one per core, or 1 with several workers")
      ->capture_default_str();
  cmd.add_option("--max-connections", s.max_connections,
                 "Connection cap; 0 = from the descriptor limit");
  cmd.add_option("--max-upload", s.max_upload,
                 "Admin API: largest blob or archive in bytes (413 beyond)")
      ->capture_default_str();
  cmd.add_option("--tls-cert", s.tls_cert, "PEM certificate chain: serve HTTPS")
      ->check(CLI::ExistingFile);
  cmd.add_option("--tls-key", s.tls_key, "PEM private key for --tls-cert")
      ->check(CLI::ExistingFile);
  cmd.add_option("--admin-tls-cert", s.admin_tls_cert,
                 "PEM certificate chain: the admin API speaks HTTPS (may be --tls-cert's file)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--admin-tls-key", s.admin_tls_key, "PEM private key for --admin-tls-cert")
      ->check(CLI::ExistingFile);
  cmd.add_option("--cache-control", s.cache_control,
                 "Quick mode: Cache-Control for every file (default: none)");
  cmd.add_flag("!--no-precompressed", s.precompressed, "Quick mode: ignore .br/.zst/.gz siblings");
  cmd.add_option("--pid-file", s.pid_file,
                 "Pid file the master locks, for atoll reload/upgrade (default: DATA/atoll.pid; "
                 "quick mode: none)");
  cmd.add_option("--access-log", s.access_log, "Access log file, '-' for stdout, 'off' for none")
      ->capture_default_str();
  cmd.add_option("--access-log-format", s.access_log_format, "json or combined")
      ->check(CLI::IsMember({"json", "combined"}))
      ->capture_default_str();
}

namespace {

// Each setting: its config key, its flag, and whether the config file takes
// it (--no-demo and --no-precompressed are flags only).
struct Setting {
  const char* key;
  const char* flag;
  bool in_config = true;
};
constexpr Setting settings[] = {{"listen", "--listen"},
                                {"admin_listen", "--admin-listen"},
                                {"data", "--data"},
                                {"base_domain", "--base-domain"},
                                {"demo_sites", "--demo-sites"},
                                {"demo", "--no-demo", false},
                                {"loops", "--loops"},
                                {"workers", "--workers"},
                                {"max_connections", "--max-connections"},
                                {"max_upload", "--max-upload"},
                                {"tls_cert", "--tls-cert"},
                                {"tls_key", "--tls-key"},
                                {"admin_tls_cert", "--admin-tls-cert"},
                                {"admin_tls_key", "--admin-tls-key"},
                                {"access_log", "--access-log"},
                                {"access_log_format", "--access-log-format"},
                                {"root", "--root"},
                                {"cache_control", "--cache-control"},
                                {"precompressed", "--no-precompressed", false},
                                {"pid_file", "--pid-file"},
                                {"certificates", "[[certificates]]"}};

const char* flag_of(const std::string& key) {
  for (const Setting& st : settings)
    if (key == st.key) return st.flag;
  return "?";
}

bool config_key(std::string_view key) {
  for (const Setting& st : settings)
    if (st.in_config && key == st.key) return true;
  return false;
}

}  // namespace

std::string mode_conflict(const ServeSettings& s) {
  // What only the site host has, and what only quick mode has.
  static constexpr const char* host_only[] = {"admin_listen",   "data",          "base_domain",
                                              "demo_sites",     "demo",          "max_upload",
                                              "admin_tls_cert", "admin_tls_key", "certificates"};
  static constexpr const char* quick_only[] = {"cache_control", "precompressed"};
  bool quick = !s.root.empty();
  for (const char* key :
       quick ? std::span<const char* const>(host_only) : std::span<const char* const>(quick_only)) {
    if (!s.given.count(key)) continue;
    return quick ? std::string(flag_of(key)) +
                       " is a site host setting; --root serves one directory, with no data "
                       "directory or admin API (drop one of them)"
                 : std::string(flag_of(key)) + " is for quick mode: it needs --root DIR";
  }
  return "";
}

void apply_config_file(CLI::App& cmd, ServeSettings& s) {
  for (const Setting& st : settings)
    if (st.flag[0] == '-' && cmd.count(st.flag) > 0) s.given.insert(st.key);
  if (s.config.empty()) return;
  toml::table t;
  try {
    t = toml::parse_file(s.config);
  } catch (const toml::parse_error& e) {
    throw std::invalid_argument(s.config + ":" + std::to_string(e.source().begin.line) + ":" +
                                std::to_string(e.source().begin.column) + ": " +
                                std::string(e.description()));
  }
  auto where = [&](const toml::node& n) {
    return s.config + ":" + std::to_string(n.source().begin.line) + ":" +
           std::to_string(n.source().begin.column) + ": ";
  };
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  auto str = [&](const char* key, const char* flag, std::string& out) {
    auto* n = t.get(key);
    if (!n) return;
    if (!n->is_string()) throw std::invalid_argument(where(*n) + "'" + key + "' must be a string");
    if (!given(flag)) out = std::string(*n->as_string());
  };
  auto num = [&](const char* key, const char* flag, auto& out) {
    auto* n = t.get(key);
    if (!n) return;
    auto v = n->value<std::int64_t>();
    if (!v || *v < 0)
      throw std::invalid_argument(where(*n) + "'" + key + "' must be a non-negative integer");
    if (!given(flag)) out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
  };
  for (auto& [k, v] : t) {
    if (!config_key(k.str()))
      throw std::invalid_argument(where(v) + "unknown setting '" + std::string(k.str()) + "'");
    s.given.insert(std::string(k.str()));
  }
  if (auto* n = t.get("listen")) {
    std::vector<std::string> list;
    if (n->is_string())
      list.push_back(std::string(*n->as_string()));
    else if (auto* arr = n->as_array()) {
      for (auto& item : *arr) {
        if (!item.is_string())
          throw std::invalid_argument(where(item) + "'listen' entries must be strings");
        list.push_back(std::string(*item.as_string()));
      }
    } else {
      throw std::invalid_argument(where(*n) + "'listen' must be a string or an array of strings");
    }
    if (!given("--listen")) s.listen = list;
  }
  str("admin_listen", "--admin-listen", s.admin_listen);
  str("data", "--data", s.data);
  str("base_domain", "--base-domain", s.base_domain);
  str("demo_sites", "--demo-sites", s.demo_sites);
  str("tls_cert", "--tls-cert", s.tls_cert);
  str("tls_key", "--tls-key", s.tls_key);
  if (auto* n = t.get("certificates")) {
    auto* arr = n->as_array();
    if (!arr)
      throw std::invalid_argument(where(*n) +
                                  "'certificates' must be an array of tables ([[certificates]])");
    s.certificates.clear();
    for (auto& item : *arr) {
      auto* c = item.as_table();
      auto* cert = c ? c->get("cert") : nullptr;
      auto* key = c ? c->get("key") : nullptr;
      if (!cert || !key || !cert->is_string() || !key->is_string())
        throw std::invalid_argument(where(item) +
                                    "each [[certificates]] needs 'cert' and 'key' file names");
      s.certificates.push_back({std::string(*cert->as_string()), std::string(*key->as_string())});
    }
  }
  str("admin_tls_cert", "--admin-tls-cert", s.admin_tls_cert);
  str("admin_tls_key", "--admin-tls-key", s.admin_tls_key);
  str("access_log", "--access-log", s.access_log);
  str("access_log_format", "--access-log-format", s.access_log_format);
  str("root", "--root", s.root);
  str("cache_control", "--cache-control", s.cache_control);
  str("pid_file", "--pid-file", s.pid_file);
  num("loops", "--loops", s.loops);
  num("workers", "--workers", s.workers);
  num("max_connections", "--max-connections", s.max_connections);
  num("max_upload", "--max-upload", s.max_upload);
}

std::vector<web::Middleware> logging(const ServeSettings& s) {
  std::vector<web::Middleware> middleware{web::request_id()};
  if (s.access_log != "off") {
    web::AccessLogOptions log{.path = s.access_log};
    if (s.access_log_format == "combined") log.format = web::AccessLogOptions::Format::combined;
    middleware.push_back(web::access_log(log));
  }
  return middleware;
}

std::string find_demo_sites(const ServeSettings& s) {  // also used by host_serve.cpp
  if (!s.demo_sites.empty()) return s.demo_sites;
  struct stat st;
  if (::stat("examples/sites", &st) == 0 && S_ISDIR(st.st_mode)) return "examples/sites";
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::string dir(exe);
    // build/<preset>/apps/atoll/atoll → the source tree's examples/sites
    for (int up = 0; up < 5; ++up) {
      dir = dir.substr(0, dir.rfind('/'));
      std::string candidate = dir + "/examples/sites";
      if (::stat(candidate.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return candidate;
    }
  }
  return "";
}

int run_master(const ServeSettings& s, net::ServerOptions options,
               std::function<bool(ServeSettings&)> reload, std::vector<std::string> argv);

net::TlsOptions tls_options(const std::string& cert, const std::string& key) {
  return net::TlsOptions{.cert_file = cert,
                         .key_file = key,
                         .alpn = {"http/1.1"},
                         .plaintext_reply = http::plaintext_on_tls_reply()};
}

int run_serve(const ServeSettings& s, std::function<bool(ServeSettings&)> reload,
              std::vector<std::string> argv) {
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    std::fprintf(stderr, "atoll serve: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (s.admin_tls_cert.empty() != s.admin_tls_key.empty()) {
    std::fprintf(stderr, "atoll serve: --admin-tls-cert and --admin-tls-key go together\n");
    return 2;
  }
  net::ServerOptions options;
  options.loops = s.loops;
  options.max_connections = s.max_connections;
  if (auto e = mode_conflict(s); !e.empty()) {
    std::fprintf(stderr, "atoll serve: %s\n", e.c_str());
    return 2;
  }
  if (!s.tls_cert.empty()) options.tls = tls_options(s.tls_cert, s.tls_key);
  try {
    // Certificates are loaded here once, so a bad one is an error at start
    // that names the file, not a worker that fails and restarts.
    if (options.tls) net::TlsContext check(*options.tls);
    for (const auto& c : s.certificates) {
      if (!options.tls)
        throw std::invalid_argument(
            "[[certificates]] in " + s.config +
            " need a TLS listener: give --tls-cert/--tls-key (the certificate for other names)");
      net::check_certificate(c.cert, c.key);
    }
    if (!s.admin_tls_cert.empty())
      net::TlsContext check(tls_options(s.admin_tls_cert, s.admin_tls_key));
    return run_master(s, options, std::move(reload), std::move(argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atoll serve: %s\n", e.what());
    return 1;
  }
}

}  // namespace atl::app
