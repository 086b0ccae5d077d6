#pragma once
// What the site host's files share (site_table.cpp, resolver_cache.cpp,
// site_app.cpp, host_metrics.cpp): the table and cache types and Host::Impl.
#include <atoll/host/host.hpp>
#include <atoll/http/exchange.hpp>

#include <fmt/format.h>

#include <atoll/host/publish.hpp>
#include <atoll/http/date.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/loop.hpp>
#include <atoll/runtime/offload.hpp>
#include <atoll/runtime/string_map.hpp>
#include <atoll/web/file_response.hpp>
#include <atoll/web/request_checks.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace atl::host {

namespace detail {

using runtime::StringMap;

struct SiteEntry {
  std::int64_t id = 0;
  std::string name;
  std::int64_t deploy = 0;
  std::int64_t previous_deploy = 0;
  std::shared_ptr<const std::vector<std::string>> changed;  // files changed since previous_deploy
  SiteConfig config;
  SiteCounters* metrics = nullptr;  // in the workers' shared state; null if its table is full
};

struct SiteTable {
  std::uint64_t version = 0;
  StringMap<std::shared_ptr<const SiteEntry>> by_host;  // "*.example.com" for a wildcard
  bool wildcards = false;
  std::unordered_map<std::int64_t, std::shared_ptr<const SiteEntry>> by_id;
};

using Variant = web::CachedVariant;

struct Resolved {
  // redirect: to `location` (a decoded path), the canonical clean URL.
  enum class Kind { file, redirect, missing } kind = Kind::missing;
  std::int64_t deploy = 0;
  std::string location;
  std::int64_t expires_ms = 0;  // missing entries only
  std::string cache_control;
  // The variants (identity, then 1 + int(web::ContentCoding)), ready for
  // web::send_file_response (a Resolved lives on the heap and never moves).
  web::CachedFile cached;
};

struct SiteCache {
  std::int64_t deploy = 0;
  StringMap<std::shared_ptr<Resolved>> paths;
};

struct LoopCache {
  std::uint64_t version = ~std::uint64_t{0};
  std::uint64_t purge_epoch = 0;
  std::shared_ptr<const SiteTable> table;
  std::unordered_map<std::int64_t, SiteCache> sites;
  std::size_t entries = 0;
  std::size_t inline_bytes = 0;
  StringMap<std::vector<runtime::Waiter>> inflight;
  std::string host_buf;
  std::string wildcard_buf;
};

}  // namespace detail

using namespace detail;

struct Host::Impl {
  Host& host;
  std::atomic<std::uint64_t> version{0};
  std::mutex table_mutex;
  std::shared_ptr<const SiteTable> table = std::make_shared<SiteTable>();
  std::mutex load_mutex;
  std::int64_t last_generation = -1;  // guarded by load_mutex

  // Counters, deploy generation and purge epoch: shared by the workers.
  std::shared_ptr<SharedState> shared;
  SharedState::Worker spare_slot;  // when every shared slot is taken
  SharedState::Worker* me;
  std::function<net::ServerInfo()> server_info;  // guarded by load_mutex

  std::thread watcher;
  std::atomic<bool> stopping{false};

  explicit Impl(Host& h)
      : host(h),
        shared(h.options_.shared ? h.options_.shared : SharedState::create()),
        me(shared->claim_worker()) {
    if (!me) {
      log::warn("host: more than {} workers: this one is left out of the per-worker metrics",
                SharedState::max_workers);
      me = &spare_slot;
    }
  }
  ~Impl() {
    if (me != &spare_slot) shared->release_worker(me);
  }

  SiteCounters* metrics_for(const std::string& name);

  // Records that this worker serves deploy generation `g` or newer. Only
  // ever forward: a load that began before a newer announcement must not
  // take back what reload() recorded.
  void mark_loaded(std::uint32_t g);

  // This worker's connection figures, for the other workers' /metrics.
  void publish_worker_stats();

  void store_worker_stats(const net::ServerInfo& i);

  std::shared_ptr<const SiteTable> current();

  // Builds a new table from the database (blocking; off the loops).
  void load();

  // The watcher: reloads at every deploy another worker announces (woken at
  // once) and every poll_ms (deploys made by `atoll publish` in another
  // process, which has no way to wake us).
  void watch(std::uint32_t seen);

  void poll_hook();

  LoopCache& loop_cache();

  // Brings this loop's view up to date with the latest table.
  void refresh(LoopCache& lc);

  // Drops every request path that `file` (a deploy path) can answer.
  static void invalidate(LoopCache& lc, SiteCache& sc, const std::string& file);

  // Blocking: the database and the store, on the offload pool.
  //
  // Clean URLs: `about.html` answers at /about and `dir/index.html` at
  // /dir/; the other spellings (/about.html, /dir/index.html, /dir for a
  // directory, /about/ when only about.html exists) redirect to that one
  // form, so a page has one address. `clean_urls = false` in _atoll.toml
  // serves every spelling as it is, with no redirects.
  std::shared_ptr<Resolved> resolve_blocking(std::int64_t deploy, std::string path, bool hidden,
                                             bool clean);

  // The cache lookup, with shared misses.
  Task<std::shared_ptr<Resolved>> lookup(const SiteEntry& site, std::string_view path);

  void count(const SiteEntry* site, int status, std::uint64_t bytes, double ms);

  Task<> send_resolved(http::Conn& c, const SiteEntry& site, const Resolved& r, int status);

  Task<> serve(http::Conn& c);

  Task<> serve_site(http::Conn& c, const SiteEntry* site);
};

}  // namespace atl::host
