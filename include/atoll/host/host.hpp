#pragma once
// Host: serves many sites, each by its host name, from the content store.
//
// A site is reached as <name>.<base domain> or by any of its custom domains.
// A background thread waits for deploys: one through the admin API, or one
// by a command that rings the data directory's doorbell (deploy_bell.hpp),
// wakes every worker at once (SharedState), and an admin-API deploy is
// answered when all of them serve it; a poll of the database's generation
// every poll_ms catches any other writer. The site table is swapped whole,
// so a request sees the old deploy or the new one, never a mix.
//
// Each loop keeps a resolver cache: (site, request path) → file, open blob
// descriptors, ETag and encodings. A hit allocates nothing and touches no
// lock. A miss asks the database off the loop; concurrent misses for one key
// share that query; misses are cached briefly too. A deploy invalidates only
// the request paths its changed files map to.
//
// | option          | default      | why                                                       |
// |-----------------|--------------|-----------------------------------------------------------|
// | base_domain     | "localhost"  | demo.localhost resolves to 127.0.0.1 in browsers         |
// | poll_ms         | 500          | a writer that rings no bell is still seen within a second |
// | negative_ttl_ms | 2000         | 404 floods hit memory, not the database                  |
// | cache_entries   | 50000 / loop | bounds memory and descriptors; the cache restarts beyond |
// | inline_max      | 16 KiB       | small files served from memory: no syscall but the write |
// | inline_total    | 64 MiB / loop| bounds that memory                                        |
// | shared          | own          | counters and deploy wake-ups shared by the workers        |
#include <atoll/host/database.hpp>
#include <atoll/host/shared_state.hpp>
#include <atoll/host/store.hpp>
#include <atoll/http/conn.hpp>
#include <atoll/net/server.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace atl::host {

struct HostOptions {
  std::string base_domain = "localhost";
  std::int64_t poll_ms = 500;
  std::int64_t negative_ttl_ms = 2000;
  std::size_t cache_entries = 50000;
  std::size_t inline_max = 16 * 1024;
  std::size_t inline_total = 64 * 1024 * 1024;
  /// Shared with the other workers (SharedState::create() in the master,
  /// before the fork); null: this Host makes its own.
  std::shared_ptr<SharedState> shared;
  /// Called before each check for changes (so before this worker tells
  /// reload() it is up to date): at every wake-up and poll of the watcher
  /// thread, and by reload() (on its caller's thread). For other
  /// per-worker state that follows the data directory (the SNI
  /// certificates). Must be cheap; what it throws is logged.
  std::function<void()> on_poll;
};

class Host {
 public:
  Host(std::shared_ptr<Database> db, std::shared_ptr<ContentStore> store, HostOptions options = {});
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  /// Loads the site table and starts watching for deploys.
  void start();
  void stop();
  /// Reloads the site table now and has every other worker reload it too
  /// (the admin API calls it after a change). Returns when all live workers
  /// serve the new table, or false after `wait_ms` if some did not yet.
  bool reload(int wait_ms = 2000);
  /// Makes every loop of every worker drop its resolver cache at its next
  /// request.
  void purge();
  /// Where this worker's connection figures come from (for /metrics of the
  /// other workers); published at every poll.
  void set_server_info(std::function<net::ServerInfo()> info);

  /// The App that serves the sites.
  http::App app();

  /// Prometheus text: requests by site and status, bytes, latency,
  /// cache hits and misses; plus the server's connections and loop lag.
  std::string metrics(const net::ServerInfo* server = nullptr) const;

  const HostOptions& options() const noexcept { return options_; }
  Database& database() noexcept { return *db_; }
  ContentStore& store() noexcept { return *store_; }

  struct Impl;

 private:
  std::shared_ptr<Database> db_;
  std::shared_ptr<ContentStore> store_;
  HostOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace atl::host
