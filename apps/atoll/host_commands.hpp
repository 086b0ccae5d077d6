#pragma once
// `atoll publish`, `atoll rollback`, `atoll sites`, `atoll deploys`: against
// a local data directory, or a running server's admin API (--server, --token).
#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace atl::app {

struct HostTarget {
  std::string data = "atoll-data";
  std::string server;  // http://127.0.0.1:8081: use the admin API instead of --data
  std::string token;   // or ATOLL_TOKEN
  std::string ca;      // PEM CA file to trust for an https:// server
};

struct PublishSettings {
  HostTarget target;
  std::string dir;
  std::string site;
};
struct RollbackSettings {
  HostTarget target;
  std::string site;
  std::optional<long long> to;
};
struct ListSettings {
  HostTarget target;
  std::string site;
};

/// `atoll sites create|delete|domains NAME [DOMAIN...]` and `atoll purge`.
struct SiteCommand {
  HostTarget target;
  std::string action;  // create, delete, domains, purge
  std::string site;
  std::vector<std::string> domains;
  std::string base_domain = "localhost";  // a local command checks domains against it
};

/// `atoll gc`: old deploys and unreferenced blobs go now.
struct GcSettings {
  HostTarget target;
  std::size_t keep = 10;
  std::int64_t grace_s = 600;
};

void add_target_options(CLI::App& cmd, HostTarget& t);
int run_store(const HostTarget& t);
int run_gc(const GcSettings& s);
int run_token(const HostTarget& t);
int run_site_command(const SiteCommand& s);
int run_publish(const PublishSettings& s);
int run_rollback(const RollbackSettings& s);
int run_sites(const ListSettings& s);
int run_deploys(const ListSettings& s);

}  // namespace atl::app
