// The site app: a request's host picks the site, its _atoll.toml rules
// apply (redirects, headers), the resolver cache answers the path, and the
// file goes out through web::send_file_response.
#include "host/host_impl.hpp"

namespace atl::host {

namespace {

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

Task<> Host::Impl::send_resolved(http::Conn& c, const SiteEntry& site, const Resolved& r,
                                 int status) {
  // The site's [[headers]] rules, applied over the file's own headers.
  std::string_view path = c.path();
  const std::function<void(http::ResponseHeaders&)> rules = [&site,
                                                             &path](http::ResponseHeaders& h) {
    for (const auto& rule : site.config.headers)
      if (path.starts_with(rule.path)) h.set(rule.name, rule.value);
  };
  // (Not a coroutine: send_file_response calls `rules` before it returns,
  // and the Task it returns reads only `r`, which the caller holds.)
  if (site.config.headers.empty()) return web::send_file_response(c, r.cached.response, status);
  web::FileResponse file = r.cached.response;
  file.decorate = &rules;
  return web::send_file_response(c, file, status);
}

Task<> Host::Impl::serve(http::Conn& c) {
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

Task<> Host::Impl::serve_site(http::Conn& c, const SiteEntry* site) {
  if (!site || !site->deploy) {
    shared->unknown_host.fetch_add(1, std::memory_order_relaxed);
    c.set_header("Content-Type", "text/html; charset=utf-8");
    c.set_header("Cache-Control", "no-store");
    co_await c.send(
        404, site ? "<!doctype html><title>Nothing here yet</title><h1>Nothing here yet</h1>"
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

http::App Host::app() {
  Impl* impl = impl_.get();
  return [impl](http::Conn& c) { return impl->serve(c); };
}

}  // namespace atl::host
