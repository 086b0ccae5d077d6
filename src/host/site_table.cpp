// The site table: loaded from the database into an immutable snapshot that
// every loop reads, reloaded when a deploy is announced (or at the poll),
// and each worker's progress recorded for the others.
#include "host/host_impl.hpp"

namespace atl::host {

SiteCounters* Host::Impl::metrics_for(const std::string& name) {
  SiteCounters* m = shared->site(name);
  if (!m) {
    static std::atomic<bool> said{false};
    if (!said.exchange(true))
      log::warn("host: more than {} sites: the others are counted in the totals only",
                SharedState::max_sites);
  }
  return m;
}

// Records that this worker serves deploy generation `g` or newer. Only
// ever forward: a load that began before a newer announcement must not
// take back what reload() recorded.
void Host::Impl::mark_loaded(std::uint32_t g) {
  std::uint32_t cur = me->loaded.load(std::memory_order_acquire);
  while (std::int32_t(g - cur) > 0 &&
         !me->loaded.compare_exchange_weak(cur, g, std::memory_order_acq_rel)) {
  }
}

// This worker's connection figures, for the other workers' /metrics.
void Host::Impl::publish_worker_stats() {
  std::function<net::ServerInfo()> info;
  {
    std::lock_guard loading(load_mutex);
    info = server_info;
  }
  if (!info) return;
  store_worker_stats(info());
}

void Host::Impl::store_worker_stats(const net::ServerInfo& i) {
  me->connections.store(i.total(), std::memory_order_relaxed);
  me->accepted.store(i.accepted, std::memory_order_relaxed);
  me->loop_stalls.store(i.loop_stalls, std::memory_order_relaxed);
  me->loop_lag_ms.store(i.max_lag_ms(), std::memory_order_relaxed);
}

std::shared_ptr<const SiteTable> Host::Impl::current() {
  std::lock_guard lock(table_mutex);
  return table;
}

// Builds a new table from the database (blocking; off the loops).
void Host::Impl::load() {
  // One load at a time, the watcher's and reload()'s alike: a load that
  // read the database before a deploy must not install its older table
  // over the newer one reload() installed after it (the site would go back
  // to the previous deploy after the admin API said the new one was live),
  // nor share its version number (loops would keep whichever they saw first).
  std::lock_guard loading(load_mutex);
  // The deploy generation is read before the database, so what this load
  // acknowledges below is never newer than what it read.
  std::uint32_t deploys = shared->generation();
  std::int64_t gen = host.db_->generation();
  if (gen == last_generation) {
    mark_loaded(deploys);
    return;
  }
  auto old = current();
  auto sites = host.db_->sites();
  auto t = std::make_shared<SiteTable>();
  for (const auto& s : sites) {
    auto e = std::make_shared<SiteEntry>();
    e->id = s.id;
    e->name = s.name;
    e->deploy = s.live_deploy.value_or(0);
    e->config = SiteConfig::from_json(s.config_json);
    e->metrics = metrics_for(s.name);
    if (auto it = old->by_id.find(s.id); it != old->by_id.end()) {
      const auto& before = *it->second;
      if (before.deploy && e->deploy && before.deploy != e->deploy) {
        e->previous_deploy = before.deploy;
        e->changed = std::make_shared<const std::vector<std::string>>(
            host.db_->changed_paths(before.deploy, e->deploy));
      } else if (before.deploy == e->deploy) {
        e->previous_deploy = before.previous_deploy;
        e->changed = before.changed;
      }
    }
    t->by_host.emplace(s.name + "." + host.options_.base_domain, e);
    for (const auto& d : s.domains) {
      // Stored before domains were normalised, a domain may be in another
      // spelling ("EXAMPLE.TEST."): look it up as the Host header will be.
      std::string canonical;
      try {
        canonical = normalise_domain(d);
      } catch (const std::invalid_argument& err) {
        log::warn("host: site {}: ignoring {}", s.name, err.what());
        continue;
      }
      t->wildcards = t->wildcards || canonical.starts_with("*.");
      t->by_host.emplace(std::move(canonical), e);
    }
    t->by_id.emplace(s.id, e);
  }
  t->version = version.load() + 1;
  {
    std::lock_guard lock(table_mutex);
    table = t;
  }
  version.store(t->version, std::memory_order_release);
  last_generation = gen;
  mark_loaded(deploys);
}

// The watcher: reloads at every deploy another worker announces (woken at
// once) and every poll_ms (deploys made by `atoll publish` in another
// process, which has no way to wake us).
void Host::Impl::watch(std::uint32_t seen) {
  while (!stopping.load(std::memory_order_acquire)) {
    seen = shared->wait_for_change(seen, int(host.options_.poll_ms));
    if (stopping.load(std::memory_order_acquire)) break;
    // Before load(), which tells reload() this worker is up to date: what
    // the hook follows (certificates) is then in place when it answers.
    poll_hook();
    try {
      load();
    } catch (const std::exception& e) {
      shared->db_errors.fetch_add(1, std::memory_order_relaxed);
      // Keep serving with the table we have; say so at most every 10 s.
      static std::int64_t last = 0;
      std::int64_t now = runtime::monotonic_ms();
      if (now - last > 10'000) {
        last = now;
        log::error("host: cannot read the site table ({}); serving the last one", e.what());
      }
    }
    publish_worker_stats();
  }
}

void Host::Impl::poll_hook() {
  if (!host.options_.on_poll) return;
  try {
    host.options_.on_poll();
  } catch (const std::exception& e) {
    log::error("host: {}", e.what());
  }
}

Host::Host(std::shared_ptr<Database> db, std::shared_ptr<ContentStore> store, HostOptions options)
    : db_(std::move(db)),
      store_(std::move(store)),
      options_(std::move(options)),
      impl_(std::make_unique<Impl>(*this)) {}

Host::~Host() { stop(); }

void Host::start() {
  // The generation is read before the first load: a deploy announced while
  // it runs is then seen by the watcher's first wait.
  std::uint32_t seen = impl_->shared->generation();
  impl_->load();
  impl_->watcher = std::thread([this, seen] { impl_->watch(seen); });
}

void Host::stop() {
  impl_->stopping.store(true, std::memory_order_release);
  // A new generation wakes the watcher whether it sleeps already or is about
  // to (a plain wake-up could come just before it sleeps, and be lost). The
  // other workers' watchers wake too and find nothing new: harmless.
  impl_->shared->announce_deploy();
  if (impl_->watcher.joinable()) impl_->watcher.join();
}

bool Host::reload(int wait_ms) {
  impl_->poll_hook();
  impl_->load();
  // Wake the other workers, and answer when they too serve the new table.
  // This worker's table already holds the change (it read the database
  // after the commit), so it counts as loaded at once.
  std::uint32_t gen = impl_->shared->announce_deploy();
  impl_->mark_loaded(gen);
  if (impl_->shared->wait_until_loaded(gen, wait_ms)) return true;
  log::warn(
      "host: a worker has not loaded the new site table after {} ms; it will at its next poll",
      wait_ms);
  return false;
}

void Host::set_server_info(std::function<net::ServerInfo()> info) {
  {
    std::lock_guard loading(impl_->load_mutex);
    impl_->server_info = std::move(info);
  }
  impl_->publish_worker_stats();
}

}  // namespace atl::host
