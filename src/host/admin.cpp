// The admin API: the bearer token, the audit trail of every write, and the
// upkeep routes (store, gc, purge, audit, metrics); the sites' and the
// content's routes are in admin_sites.cpp and admin_content.cpp.
#include "host/admin_internal.hpp"

namespace atl::host {

using namespace admin_detail;

std::string site_url(std::string_view name, std::string_view base_domain, bool tls,
                     std::uint16_t port) {
  std::string url = tls ? "https://" : "http://";
  url.append(name).append(".").append(base_domain);
  if (port != 0 && port != (tls ? 443 : 80)) url += ":" + std::to_string(port);
  return url + "/";
}

std::string load_or_create_token(const std::string& dir, bool& created) {
  std::string path = dir + "/admin.token";
  created = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    std::string t(buf, n > 0 ? std::size_t(n) : 0);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    if (t.size() < 16)
      throw std::runtime_error("admin token file '" + path +
                               "' holds no usable token (16+ characters)");
    return t;
  }
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != sizeof raw)
    throw std::runtime_error("cannot get random bytes for the admin token");
  static constexpr char hex[] = "0123456789abcdef";
  std::string t;
  for (unsigned char b : raw) {
    t += hex[b >> 4];
    t += hex[b & 15];
  }
  fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot create admin token file '" + path +
                             "': " + std::strerror(errno));
  std::string line = t + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write admin token file '" + path + "'");
  created = true;
  return t;
}

http::App admin_api(Host& host, AdminOptions options) {
  auto st = std::make_shared<AdminState>(host, std::move(options));
  web::Router api;
  site_routes(api, st);
  content_routes(api, st);

  api.get("/api/store", [st](http::Conn& c) -> Task<> {
    co_await run(c, [&] {
      return Outcome{200, usage_json(Publisher(st->host.store(), st->host.database()).usage())};
    });
  });

  api.post("/api/gc", [st](http::Conn& c) -> Task<> {
    std::string body = co_await c.read_body(64 * 1024);
    auto j = body.empty() ? std::optional<json>(json::object()) : parse_json(body);
    std::size_t keep = st->options.keep_deploys;
    std::int64_t grace = 600;
    std::string e =
        !j || !j->is_object() ? "expected a JSON object {\"keep\": N, \"grace_s\": S}" : "";
    if (e.empty() && j->contains("keep")) {
      auto& k = (*j)["keep"];
      if (!k.is_number_integer() || k.get<std::int64_t>() < 1)
        e = "'keep' must be a whole number of deploys, at least 1";
      else
        keep = k.get<std::size_t>();
    }
    if (e.empty() && j->contains("grace_s")) {
      auto& g = (*j)["grace_s"];
      if (!g.is_number_integer() || g.get<std::int64_t>() < 0)
        e = "'grace_s' must be a whole number of seconds, 0 or more";
      else
        grace = g.get<std::int64_t>();
    }
    if (!e.empty()) {
      co_await error(c, 400, e);
      co_return;
    }
    co_await run(c, [&] {
      std::lock_guard lock(st->deploy_mutex);  // not while a deploy stores its blobs
      Publisher pub(st->host.store(), st->host.database());
      GcResult r = pub.collect_garbage(keep, grace);
      json out = gc_json(r);
      out["store"] = usage_json(pub.usage());
      return Outcome{200, out};
    });
  });

  api.post("/api/cache/purge", [st](http::Conn& c) -> Task<> {
    st->host.purge();
    co_await c.send(204, "");
  });

  api.get("/api/audit", [st](http::Conn& c) -> Task<> {
    std::string site(c.query().get("site").value_or(""));
    std::size_t limit = 100;
    if (auto l = c.query().get("limit"))
      limit = std::size_t(std::clamp(std::atol(std::string(*l).c_str()), 1L, 10000L));
    co_await run(c, [&] {
      json list = json::array();
      for (const auto& e : st->host.database().audit(limit, site))
        list.push_back({{"id", e.id},
                        {"at", e.at},
                        {"peer", e.peer},
                        {"action", e.action},
                        {"site", e.site},
                        {"status", e.status},
                        {"detail", e.detail}});
      return Outcome{200, json{{"entries", list}}};
    });
  });

  api.get("/metrics", [st](http::Conn& c) -> Task<> {
    net::ServerInfo info;
    bool have = bool(st->options.server_info);
    if (have) info = st->options.server_info();
    c.set_header("Content-Type", "text/plain; version=0.0.4");
    co_await c.send(200, st->host.metrics(have ? &info : nullptr));
  });

  http::App routes = api;
  return [st, routes](http::Conn& c) -> Task<> {
    if (c.path() == "/health") {
      bool draining = st->options.draining && st->options.draining();
      json body = health_body(draining);
      co_await reply(c, draining ? 503 : 200, body);
      co_return;
    }
    // Bearer token, compared in constant time.
    std::string_view auth = c.header("authorization");
    const std::string& token = st->options.token;
    bool ok = auth.size() == 7 + token.size() && http::iequals(auth.substr(0, 7), "Bearer ") &&
              CRYPTO_memcmp(auth.data() + 7, token.data(), token.size()) == 0;
    AuditEntry entry;
    entry.peer = c.peer().host();
    if (!ok) {
      c.set_header("WWW-Authenticate", "Bearer realm=\"atoll admin\"");
      co_await error(
          c, 401,
          auth.empty() ? "missing Authorization: Bearer <token> (the token is in DATA/admin.token)"
                       : "wrong token");
      long dropped = st->refusals.take();
      if (dropped < 0) co_return;
      entry.action = "auth.refused";
      entry.status = 401;
      entry.detail = std::string(c.method()) + " " + std::string(c.path().substr(0, 100)) +
                     (auth.empty() ? ": no token" : ": wrong token");
      if (dropped > 0) entry.detail += " (and " + std::to_string(dropped) + " more not recorded)";
    } else {
      // A refusal the HTTP layer raises (413 over the upload limit, a body
      // cut short) is JSON here like every other admin error.
      std::optional<http::HttpError> refused;
      try {
        co_await routes(c);
      } catch (const http::HttpError& e) {
        if (c.response_started()) throw;
        refused = e;
      }
      if (refused) {
        c.close_after_response();
        co_await error(c, refused->status(), refused->what());
      }
      entry.action = audit_action(c.method(), c.path(), entry.site);
      if (entry.action.empty()) co_return;
      entry.status = c.status();
      if (auto* note = c.find_assign<AuditNote>()) {
        if (entry.site.empty()) entry.site = note->site;
        entry.detail = note->detail;
      }
    }
    // (Named, not a temporary: see run().)
    auto job = runtime::offload([&st, &entry] {
      write_audit(st->host.database(), entry);
      return 0;
    });
    co_await job;
  };
}

}  // namespace atl::host
