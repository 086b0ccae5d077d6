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

namespace {

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

struct Variant {
  int fd = -1;
  std::uint64_t size = 0;
  std::string data;
  bool in_memory = false;
  std::string etag;
  // Content-Type, ETag, Last-Modified, Cache-Control and Content-Encoding or
  // Accept-Ranges: made once.
  http::HeaderBlock headers;
  explicit operator bool() const noexcept { return fd >= 0 || in_memory; }
};

struct Resolved {
  // redirect: to `location` (a decoded path), the canonical clean URL.
  enum class Kind { file, redirect, missing } kind = Kind::missing;
  std::int64_t deploy = 0;
  std::string location;
  std::int64_t expires_ms = 0;  // missing entries only
  std::string mime;
  std::string cache_control;
  std::string last_modified;
  Variant variants[4];  // identity, then 1 + int(web::ContentCoding)
  // What web::send_file_response is handed: views of the above, made once
  // (a Resolved lives on the heap and never moves).
  web::FileVariant views[4];
  web::FileResponse file;
  ~Resolved() {
    for (auto& v : variants)
      if (v.fd >= 0) ::close(v.fd);
  }
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

// "HTML revalidates, hashed assets are immutable": a name with a segment of
// 8+ hex digits or a dash-separated build hash (app.3f2a9c1e.js,
// index-BfSq2x9L.js) is content-addressed by its build tool. The segment
// must mix letters and digits: photo.20240101.jpg is a date, not a hash, and
// a file that may change under one name must not be cached for a year.
// (An _atoll.toml [[headers]] rule for Cache-Control overrides this.)
std::string cache_control_for(std::string_view path, std::string_view mime) {
  if (mime.starts_with("text/html")) return "no-cache";
  auto slash = path.rfind('/');
  std::string_view name = path.substr(slash == std::string_view::npos ? 0 : slash + 1);
  std::size_t pos = 0;
  while (pos < name.size()) {
    std::size_t end = name.find_first_of(".-", pos);
    if (end == std::string_view::npos) end = name.size();
    std::string_view seg = name.substr(pos, end - pos);
    if (seg.size() >= 8 && end != name.size()) {
      bool hex = true, digit = false, letter = false, upper = false, alnum = true;
      for (char c : seg) {
        auto u = static_cast<unsigned char>(c);
        hex = hex && std::isxdigit(u);
        digit = digit || std::isdigit(u);
        letter = letter || std::isalpha(u);
        upper = upper || std::isupper(u);
        alnum = alnum && (std::isalnum(u) || c == '_');
      }
      bool mixed = digit && letter;
      if (hex && mixed) return "public, max-age=31536000, immutable";
      // Vite's and esbuild's base64url hashes: mixed case and digits
      // ("report-final2024" is words, not a hash).
      if (pos > 0 && name[pos - 1] == '-' && mixed && upper && alnum)
        return "public, max-age=31536000, immutable";
    }
    pos = end + 1;
  }
  return "public, max-age=300";
}

// A decoded path as a Location: bytes outside RFC 3986's pchar set, and
// '/', are percent-encoded.
std::string encode_path(std::string_view path) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char ch : path) {
    auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) ||
        std::string_view("/-._~!$&'()*+,;=:@").find(ch) != std::string_view::npos) {
      out += ch;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

}  // namespace

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

  SiteCounters* metrics_for(const std::string& name) {
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
  void mark_loaded(std::uint32_t g) {
    std::uint32_t cur = me->loaded.load(std::memory_order_acquire);
    while (std::int32_t(g - cur) > 0 &&
           !me->loaded.compare_exchange_weak(cur, g, std::memory_order_acq_rel)) {
    }
  }

  // This worker's connection figures, for the other workers' /metrics.
  void publish_worker_stats() {
    std::function<net::ServerInfo()> info;
    {
      std::lock_guard loading(load_mutex);
      info = server_info;
    }
    if (!info) return;
    store_worker_stats(info());
  }
  void store_worker_stats(const net::ServerInfo& i) {
    me->connections.store(i.total(), std::memory_order_relaxed);
    me->accepted.store(i.accepted, std::memory_order_relaxed);
    me->loop_stalls.store(i.loop_stalls, std::memory_order_relaxed);
    me->loop_lag_ms.store(i.max_lag_ms(), std::memory_order_relaxed);
  }

  std::shared_ptr<const SiteTable> current() {
    std::lock_guard lock(table_mutex);
    return table;
  }

  // Builds a new table from the database (blocking; off the loops).
  void load() {
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
  void watch(std::uint32_t seen) {
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

  void poll_hook() {
    if (!host.options_.on_poll) return;
    try {
      host.options_.on_poll();
    } catch (const std::exception& e) {
      log::error("host: {}", e.what());
    }
  }

  LoopCache& loop_cache() {
    // One Host per process in practice: remember the last one asked for, so
    // a request costs a compare, not a hash lookup.
    thread_local std::unordered_map<const Impl*, LoopCache> caches;
    thread_local const Impl* last = nullptr;
    thread_local LoopCache* last_cache = nullptr;
    if (last != this) {
      last_cache = &caches[this];  // (node-based: the address stays valid)
      last = this;
    }
    return *last_cache;
  }

  // Brings this loop's view up to date with the latest table.
  void refresh(LoopCache& lc) {
    std::uint64_t epoch = shared->purge_epoch.load(std::memory_order_acquire);
    if (lc.purge_epoch != epoch) {
      lc.purge_epoch = epoch;
      lc.sites.clear();
      lc.entries = lc.inline_bytes = 0;
    }
    std::uint64_t v = version.load(std::memory_order_acquire);
    if (lc.version == v) return;
    lc.table = current();
    lc.version = lc.table->version;
    for (auto it = lc.sites.begin(); it != lc.sites.end();) {
      auto site = lc.table->by_id.find(it->first);
      SiteCache& sc = it->second;
      if (site == lc.table->by_id.end()) {
        lc.entries -= sc.paths.size();
        it = lc.sites.erase(it);
        continue;
      }
      const SiteEntry& e = *site->second;
      if (sc.deploy != e.deploy) {
        if (e.changed && e.previous_deploy == sc.deploy) {
          for (const auto& file : *e.changed) invalidate(lc, sc, file);
          sc.deploy = e.deploy;
        } else {
          lc.entries -= sc.paths.size();
          sc.paths.clear();
          sc.deploy = e.deploy;
        }
      }
      ++it;
    }
  }

  // Drops every request path that `file` (a deploy path) can answer.
  static void invalidate(LoopCache& lc, SiteCache& sc, const std::string& file) {
    auto drop = [&](const std::string& key) { lc.entries -= sc.paths.erase(key); };
    std::string p = "/" + file;
    drop(p);
    if (p.ends_with(".html")) drop(p.substr(0, p.size() - 5));
    if (p.ends_with("/index.html")) {
      std::string dir = p.substr(0, p.size() - 10);  // keeps the trailing '/'
      drop(dir);
      if (dir.size() > 1) drop(dir.substr(0, dir.size() - 1));
    }
  }

  // Blocking: the database and the store, on the offload pool.
  //
  // Clean URLs: `about.html` answers at /about and `dir/index.html` at
  // /dir/; the other spellings (/about.html, /dir/index.html, /dir for a
  // directory, /about/ when only about.html exists) redirect to that one
  // form, so a page has one address. `clean_urls = false` in _atoll.toml
  // serves every spelling as it is, with no redirects.
  std::shared_ptr<Resolved> resolve_blocking(std::int64_t deploy, std::string path, bool hidden,
                                             bool clean) {
    auto r = std::make_shared<Resolved>();
    r->deploy = deploy;
    if (hidden) return r;  // a deploy made before the hidden-name rule may hold .env
    std::string rel = path.substr(1);
    auto exists = [&](const std::string& file) { return host.db_->resolve(deploy, file); };
    auto redirect = [&](std::string to) {
      r->kind = Resolved::Kind::redirect;
      r->location = "/" + std::move(to);
      return r;
    };
    std::vector<std::string> candidates;
    if (rel.empty() || rel.back() == '/') {
      candidates.push_back(rel + "index.html");
    } else {
      candidates.push_back(rel);
      candidates.push_back(rel + ".html");
    }
    for (const auto& file : candidates) {
      auto rec = exists(file);
      if (!rec) continue;
      if (clean && &file == &candidates.front() && rel.ends_with(".html")) {
        // /dir/index.html -> /dir/; /about.html -> /about, unless a file
        // named `about` answers there.
        if (rel == "index.html" || rel.ends_with("/index.html"))
          return redirect(rel.substr(0, rel.size() - 10));
        std::string bare = rel.substr(0, rel.size() - 5);
        if (!bare.empty() && bare.back() != '/' && !exists(bare)) return redirect(bare);
      }
      r->kind = Resolved::Kind::file;
      r->mime = rec->mime;
      r->cache_control = cache_control_for(rec->path, rec->mime);
      const std::string* hashes[4] = {&rec->hash, &rec->br, &rec->zst, &rec->gz};
      for (int i = 0; i < 4; ++i) {
        if (hashes[i]->empty()) continue;
        Variant& v = r->variants[i];
        int fd = ::open(host.store_->path(*hashes[i]).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          if (i == 0)
            throw std::runtime_error("blob " + *hashes[i] + " for " + rec->path +
                                     " is missing from the store");
          continue;
        }
        if (i == 0) {
          // Last-Modified: when these bytes first reached the store (a
          // deploy that leaves the file unchanged leaves the date too).
          struct stat st;
          if (::fstat(fd, &st) == 0) {
            r->file.mtime = st.st_mtim.tv_sec;
            char date[29];
            http::format_http_date(r->file.mtime, date);
            r->last_modified.assign(date, sizeof date);
          }
        }
        v.fd = fd;
        v.size = i == 0 ? rec->size : i == 1 ? rec->br_size : i == 2 ? rec->zst_size : rec->gz_size;
        v.etag = "\"" + *hashes[i] + "\"";
        v.headers.add("Content-Type", r->mime);
        v.headers.add("ETag", v.etag);
        if (!r->last_modified.empty()) v.headers.add("Last-Modified", r->last_modified);
        v.headers.add("Cache-Control", r->cache_control);
        if (i > 0)
          v.headers.add("Content-Encoding", web::coding_name(web::ContentCoding(i - 1)));
        else
          v.headers.add("Accept-Ranges", "bytes");
        if (v.size <= host.options_.inline_max) {
          v.data.resize(v.size);
          if (::pread(fd, v.data.data(), v.size, 0) == ssize_t(v.size)) {
            v.in_memory = true;
            ::close(fd);
            v.fd = -1;
          } else {
            v.data.clear();
          }
        }
        r->views[i] = {.fd = v.fd,
                       .data = v.data,
                       .in_memory = v.in_memory,
                       .size = v.size,
                       .etag = v.etag,
                       .headers = &v.headers};
        r->file.variants[i] = &r->views[i];
      }
      r->file.mime = r->mime;
      r->file.last_modified = r->last_modified;
      return r;
    }
    if (rel.empty()) return r;
    if (rel.back() == '/') {
      // /about/ with no about/index.html: about.html answers at /about.
      std::string bare = rel.substr(0, rel.size() - 1);
      if (clean && exists(bare + ".html")) return redirect(bare);
    } else if (exists(rel + "/index.html")) {
      return redirect(rel + "/");  // a directory: its index answers at /dir/
    }
    return r;
  }

  // The cache lookup, with shared misses.
  Task<std::shared_ptr<Resolved>> lookup(const SiteEntry& site, std::string_view path) {
    LoopCache& lc = loop_cache();
    SiteCache& sc = lc.sites[site.id];
    if (sc.deploy != site.deploy) {  // first use, or the table moved on
      lc.entries -= sc.paths.size();
      sc.paths.clear();
      sc.deploy = site.deploy;
    }
    auto* loop = runtime::Loop::current();
    std::int64_t now = loop->now_ms();
    if (auto it = sc.paths.find(path); it != sc.paths.end()) {
      if (it->second->kind != Resolved::Kind::missing || it->second->expires_ms > now) {
        shared->cache_hits.fetch_add(1, std::memory_order_relaxed);
        co_return it->second;
      }
      lc.entries -= 1;
      sc.paths.erase(it);
    }
    shared->cache_misses.fetch_add(1, std::memory_order_relaxed);
    std::string key =
        std::to_string(site.id) + ":" + std::to_string(site.deploy) + ":" + std::string(path);
    if (auto in = lc.inflight.find(key); in != lc.inflight.end()) {
      // Someone on this loop is already asking: wait for their answer.
      struct Join {
        std::vector<runtime::Waiter>& waiters;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
          waiters.push_back({h, runtime::Loop::current()->current_tag()});
        }
        void await_resume() const noexcept {}
      };
      co_await Join{in->second};
      LoopCache& again = loop_cache();
      SiteCache& sc2 = again.sites[site.id];
      if (auto it = sc2.paths.find(path); it != sc2.paths.end()) co_return it->second;
      // The query failed or the deploy moved on: ask ourselves.
    }
    lc.inflight.emplace(key, std::vector<runtime::Waiter>{});
    std::shared_ptr<Resolved> r;
    std::exception_ptr failure;
    std::int64_t deploy = site.deploy;
    std::string owned(path);
    // Captures by reference only, and a named awaiter: GCC 12 mishandles
    // closures with non-trivial captures inside awaiters (docs/coding-notes.md).
    bool hidden =
        owned.find("/.") != std::string::npos &&
        !hidden_refusal(std::string_view(owned).substr(1), site.config.include_hidden).empty();
    bool clean = site.config.clean_urls;
    auto job = runtime::offload([this, deploy, &owned, hidden, clean] {
      return resolve_blocking(deploy, owned, hidden, clean);
    });
    try {
      r = co_await job;
    } catch (...) {
      failure = std::current_exception();
    }
    LoopCache& lc2 = loop_cache();
    if (r) {
      SiteCache& sc2 = lc2.sites[site.id];
      if (sc2.deploy == deploy) {
        if (lc2.entries >= host.options_.cache_entries) {
          for (auto& [_, s] : lc2.sites) s.paths.clear();
          lc2.entries = 0;
        }
        if (r->kind == Resolved::Kind::missing)
          r->expires_ms = runtime::Loop::current()->now_ms() + host.options_.negative_ttl_ms;
        if (sc2.paths.insert_or_assign(owned, r).second) ++lc2.entries;
      }
    }
    if (auto in = lc2.inflight.find(key); in != lc2.inflight.end()) {
      for (auto w : in->second) runtime::Loop::current()->schedule(w);
      lc2.inflight.erase(in);
    }
    if (failure) std::rethrow_exception(failure);
    co_return r;
  }

  void count(const SiteEntry* site, int status, std::uint64_t bytes, double ms) {
    if (site && site->metrics) {
      std::size_t slot = counted_codes.size();
      for (std::size_t i = 0; i < counted_codes.size(); ++i)
        if (counted_codes[i] == status) slot = i;
      site->metrics->by_code[slot].fetch_add(1, std::memory_order_relaxed);
      site->metrics->bytes.fetch_add(bytes, std::memory_order_relaxed);
    }
    std::size_t b = 0;
    while (b < latency_buckets_ms.size() && ms > latency_buckets_ms[b]) ++b;
    shared->latency[b].fetch_add(1, std::memory_order_relaxed);
    shared->latency_count.fetch_add(1, std::memory_order_relaxed);
    shared->latency_sum_ns.fetch_add(std::uint64_t(ms * 1e6), std::memory_order_relaxed);
  }

  Task<> send_resolved(http::Conn& c, const SiteEntry& site, const Resolved& r, int status) {
    // The site's [[headers]] rules, applied over the file's own headers.
    std::string_view path = c.path();
    const std::function<void(http::ResponseHeaders&)> rules = [&site,
                                                               &path](http::ResponseHeaders& h) {
      for (const auto& rule : site.config.headers)
        if (path.starts_with(rule.path)) h.set(rule.name, rule.value);
    };
    web::FileResponse file = r.file;
    if (!site.config.headers.empty()) file.decorate = &rules;
    co_await web::send_file_response(c, file, status);
  }

  Task<> serve(http::Conn& c) {
    timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LoopCache& lc = loop_cache();
    refresh(lc);
    // Host names are case-insensitive; lower-case into a reused buffer.
    lc.host_buf.assign(c.host());
    for (auto& ch : lc.host_buf)
      if (ch >= 'A' && ch <= 'Z') ch = char(ch | 0x20);  // ASCII only: no locale call per byte
    if (!lc.host_buf.empty() && lc.host_buf.back() == '.') lc.host_buf.pop_back();
    auto it = lc.table->by_host.find(std::string_view(lc.host_buf));
    if (it == lc.table->by_host.end() && lc.table->wildcards) {
      // a.b.example.com: *.b.example.com first, then *.example.com.
      std::string_view h = lc.host_buf;
      for (std::size_t dot = h.find('.'); dot != std::string_view::npos && dot + 1 < h.size();
           dot = h.find('.', dot + 1)) {
        lc.wildcard_buf.assign("*");
        lc.wildcard_buf.append(h.substr(dot));
        it = lc.table->by_host.find(std::string_view(lc.wildcard_buf));
        if (it != lc.table->by_host.end()) break;
      }
    }
    std::shared_ptr<const SiteEntry> site = it == lc.table->by_host.end() ? nullptr : it->second;
    std::exception_ptr failure;
    try {
      co_await serve_site(c, site.get());
    } catch (...) {
      failure = std::current_exception();
    }
    timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = double(t1.tv_sec - t0.tv_sec) * 1e3 + double(t1.tv_nsec - t0.tv_nsec) / 1e6;
    count(site.get(), failure && !c.response_started() ? 500 : c.status(), c.bytes_sent(), ms);
    if (failure) std::rethrow_exception(failure);
  }

  Task<> serve_site(http::Conn& c, const SiteEntry* site) {
    if (!site || !site->deploy) {
      shared->unknown_host.fetch_add(1, std::memory_order_relaxed);
      c.set_header("Content-Type", "text/html; charset=utf-8");
      c.set_header("Cache-Control", "no-store");
      co_await c.send(
          404,
          site ? "<!doctype html><title>Nothing here yet</title><h1>Nothing here yet</h1>"
                 "<p>This site has no deploy. Publish one with <code>atoll publish</code>.</p>\n"
               : "<!doctype html><title>No such site</title><h1>No such site</h1>"
                 "<p>No site on this server answers to this host name.</p>\n");
      co_return;
    }
    if (c.method() != "GET" && c.method() != "HEAD") {
      c.set_header("Allow", "GET, HEAD");
      co_await http::send_error(c, 405);
      co_return;
    }
    std::string_view path = c.path();
    if (!web::is_safe_path(path)) {
      co_await http::send_error(
          c, 400, http::error_line(400, "the path holds '..', '.', a backslash or a NUL"));
      co_return;
    }
    for (const auto& red : site->config.redirects) {
      bool prefix = red.from.size() > 1 && red.from.back() == '*';
      std::string_view from = prefix ? std::string_view(red.from).substr(0, red.from.size() - 1)
                                     : std::string_view(red.from);
      if (prefix ? path.starts_with(from) : path == from) {
        std::string to = red.to;
        if (prefix && to.size() > 1 && to.back() == '*')
          to = to.substr(0, to.size() - 1) + std::string(path.substr(from.size()));
        c.set_header("Location", to);
        co_await c.send(red.status, "");
        co_return;
      }
    }
    std::shared_ptr<Resolved> r;
    std::string lookup_error;
    try {
      r = co_await lookup(*site, path);
    } catch (const std::exception& e) {
      lookup_error = e.what();
    }
    if (!r) {
      // The database is locked or gone: paths in the cache keep being
      // served; this one cannot be, for now.
      shared->db_errors.fetch_add(1, std::memory_order_relaxed);
      log::error("host: {} {}: {}", site->name, std::string(path), lookup_error);
      c.set_header("Retry-After", "1");
      co_await http::send_error(
          c, 503, http::error_line(503, "the site database cannot be read; try again shortly"));
      co_return;
    }
    if (r->kind == Resolved::Kind::redirect) {
      std::string location = encode_path(r->location);
      if (!c.query_string().empty()) location += "?" + std::string(c.query_string());
      c.set_header("Location", location);
      co_await c.send(301, "");
      co_return;
    }
    if (r->kind == Resolved::Kind::file) {
      co_await send_resolved(c, *site, *r, 200);
      co_return;
    }
    // Not found: the single-page-app fallback, then the site's 404 page.
    for (const auto* fallback : {&site->config.spa, &site->config.not_found}) {
      if (fallback->empty()) continue;
      auto f = co_await lookup(*site, "/" + *fallback);
      // "404.html" is served from its clean address, /404.
      if (f->kind == Resolved::Kind::redirect) f = co_await lookup(*site, f->location);
      if (f->kind == Resolved::Kind::file) {
        co_await send_resolved(c, *site, *f, fallback == &site->config.spa ? 200 : 404);
        co_return;
      }
    }
    co_await http::send_error(c, 404);
  }
};

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

void Host::purge() { impl_->shared->purge_epoch.fetch_add(1, std::memory_order_acq_rel); }

void Host::set_server_info(std::function<net::ServerInfo()> info) {
  {
    std::lock_guard loading(impl_->load_mutex);
    impl_->server_info = std::move(info);
  }
  impl_->publish_worker_stats();
}

http::App Host::app() {
  Impl* impl = impl_.get();
  return [impl](http::Conn& c) { return impl->serve(c); };
}

std::string Host::metrics(const net::ServerInfo* server) const {
  SharedState& sh = *impl_->shared;
  if (server) impl_->store_worker_stats(*server);  // this worker's own figures, fresh
  std::string out;
  out +=
      "# HELP atoll_requests_total Requests answered, by site and status (every worker).\n"
      "# TYPE atoll_requests_total counter\n";
  std::string bytes =
      "# HELP atoll_response_bytes_total Body bytes sent, by site.\n# TYPE "
      "atoll_response_bytes_total counter\n";
  sh.for_each_site([&](std::string_view name, const SiteCounters& m) {
    for (std::size_t i = 0; i <= counted_codes.size(); ++i) {
      std::uint64_t n = m.by_code[i].load(std::memory_order_relaxed);
      if (!n) continue;
      std::string code = i < counted_codes.size() ? std::to_string(counted_codes[i]) : "other";
      out += fmt::format("atoll_requests_total{{site=\"{}\",status=\"{}\"}} {}\n", name, code, n);
    }
    bytes += fmt::format("atoll_response_bytes_total{{site=\"{}\"}} {}\n", name,
                         m.bytes.load(std::memory_order_relaxed));
  });
  out += bytes;
  out +=
      "# HELP atoll_request_duration_seconds Time to answer a request.\n# TYPE "
      "atoll_request_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_buckets_ms.size(); ++i) {
    cumulative += sh.latency[i].load(std::memory_order_relaxed);
    out += fmt::format("atoll_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                       latency_buckets_ms[i] / 1000, cumulative);
  }
  cumulative += sh.latency[latency_buckets_ms.size()].load(std::memory_order_relaxed);
  out += fmt::format("atoll_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("atoll_request_duration_seconds_sum {:.6f}\n",
                     double(sh.latency_sum_ns.load(std::memory_order_relaxed)) / 1e9);
  out += fmt::format("atoll_request_duration_seconds_count {}\n", sh.latency_count.load());
  auto counter = [&](std::string_view name, const std::atomic<std::uint64_t>& v) {
    out += fmt::format("# TYPE {0} counter\n{0} {1}\n", name, v.load(std::memory_order_relaxed));
  };
  counter("atoll_cache_hits_total", sh.cache_hits);
  counter("atoll_cache_misses_total", sh.cache_misses);
  counter("atoll_database_errors_total", sh.db_errors);
  counter("atoll_unknown_host_total", sh.unknown_host);

  // Per worker: what each published at its last poll (this one: just now).
  std::string conns =
      "# HELP atoll_connections Open connections, by worker.\n# TYPE atoll_connections gauge\n";
  std::string lag =
      "# HELP atoll_loop_lag_seconds Worst loop lag of each worker over the last 10-20 s.\n"
      "# TYPE atoll_loop_lag_seconds gauge\n";
  std::uint64_t accepted = 0, stalls = 0;
  bool any = false;
  for (std::size_t w = 0; w < sh.workers.size(); ++w) {
    const auto& slot = sh.workers[w];
    std::int32_t pid = slot.pid.load(std::memory_order_acquire);
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) continue;
    any = true;
    conns += fmt::format("atoll_connections{{worker=\"{}\"}} {}\n", w,
                         slot.connections.load(std::memory_order_relaxed));
    lag += fmt::format("atoll_loop_lag_seconds{{worker=\"{}\"}} {:.3f}\n", w,
                       double(slot.loop_lag_ms.load(std::memory_order_relaxed)) / 1000);
    accepted += slot.accepted.load(std::memory_order_relaxed);
    stalls += slot.loop_stalls.load(std::memory_order_relaxed);
  }
  if (any) {
    out += conns;
    out += lag;
    out += fmt::format(
        "# TYPE atoll_connections_accepted_total counter\natoll_connections_accepted_total {}\n",
        accepted);
    out += fmt::format(
        "# HELP atoll_loop_stalls_total Times a handler held a loop past the watchdog "
        "threshold.\n# TYPE atoll_loop_stalls_total counter\natoll_loop_stalls_total {}\n",
        stalls);
  }
  return out;
}

}  // namespace atl::host
