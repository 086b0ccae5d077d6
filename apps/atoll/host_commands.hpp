#pragma once
// `atoll publish`, `atoll rollback`, `atoll sites`, `atoll deploys`: against
// a local data directory, or a running server's admin API (--server, --token).
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

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

void add_target_options(CLI::App& cmd, HostTarget& t);
int run_publish(const PublishSettings& s);
int run_rollback(const RollbackSettings& s);
int run_sites(const ListSettings& s);
int run_deploys(const ListSettings& s);

}  // namespace atl::app
