// The resolver cache: each loop's map from request path to what answers it
// (a file's variants held open, a redirect, a miss), filled from the
// database on the offload pool with shared misses, and brought up to date
// when the site table moves on.
#include "host/host_impl.hpp"

namespace atl::host {

namespace {

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

}  // namespace

LoopCache& Host::Impl::loop_cache() {
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
void Host::Impl::refresh(LoopCache& lc) {
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
void Host::Impl::invalidate(LoopCache& lc, SiteCache& sc, const std::string& file) {
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
std::shared_ptr<Resolved> Host::Impl::resolve_blocking(std::int64_t deploy, std::string path,
                                                       bool hidden, bool clean) {
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
    web::CachedFile& f = r->cached;
    f.mime = rec->mime;
    r->cache_control = cache_control_for(rec->path, rec->mime);
    const std::string* hashes[4] = {&rec->hash, &rec->br, &rec->zst, &rec->gz};
    for (int i = 0; i < 4; ++i) {
      if (hashes[i]->empty()) continue;
      Variant& v = f.variants[i];
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
          f.mtime = st.st_mtim.tv_sec;
          char date[29];
          http::format_http_date(f.mtime, date);
          f.last_modified.assign(date, sizeof date);
        }
      }
      v.fd = fd;
      v.size = i == 0 ? rec->size : i == 1 ? rec->br_size : i == 2 ? rec->zst_size : rec->gz_size;
      v.etag = "\"" + *hashes[i] + "\"";
      v.headers.add("Content-Type", f.mime);
      v.headers.add("ETag", v.etag);
      if (!f.last_modified.empty()) v.headers.add("Last-Modified", f.last_modified);
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
    }
    f.ready();
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
Task<std::shared_ptr<Resolved>> Host::Impl::lookup(const SiteEntry& site, std::string_view path) {
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

// Every loop drops its cache at its next request (the epoch is shared by the
// workers).
void Host::purge() { impl_->shared->purge_epoch.fetch_add(1, std::memory_order_acq_rel); }

}  // namespace atl::host
