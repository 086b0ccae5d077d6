#include <atoll/host/admin.hpp>

#include "host/archive.hpp"

#include <atoll/host/certificates.hpp>
#include <atoll/host/publish.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/offload.hpp>
#include <atoll/runtime/rate_limit.hpp>
#include <atoll/web/router.hpp>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace atl::host {

using nlohmann::json;

namespace {

struct AdminState {
  AdminState(Host& h, AdminOptions o) : host(h), options(std::move(o)) {}
  Host& host;
  AdminOptions options;
  // One deploy at a time: deploys are rare, and serialising them keeps
  // garbage collection from racing a deploy that is still storing blobs.
  std::mutex deploy_mutex;
  // Refused tokens are recorded, but a flood of them must not fill the
  // disk: at most 10 a second each worker, then one entry for those left out.
  runtime::PerSecondLimit refusals{10};
};

// What the audit trail says of this request beyond its route and status.
struct AuditNote {
  std::string site;    // when the path does not name it (POST /api/sites)
  std::string detail;  // the error, or what was made
};

Task<> reply(http::Conn& c, int status, const json& body) {
  // The answer's gist, for the audit trail: the error, or what was made.
  if (body.is_object()) {
    auto& note = c.assign<AuditNote>();
    if (body.contains("error") && body["error"].is_string())
      note.detail = body["error"].get<std::string>();
    else if (body.contains("deploy") && body.contains("files"))
      note.detail = "deploy " + body["deploy"].dump() + ", " + body["files"].dump() + " files";
    else if (body.contains("live"))
      note.detail = "deploy " + body["live"].dump() + " live";
    else if (body.contains("names"))
      note.detail = "certificate for " + body["names"].dump();
    else if (body.contains("domains"))
      note.detail = "domains " + body["domains"].dump();
    else if (body.contains("bytes_freed"))
      note.detail = body["deploys_removed"].dump() + " deploys, " + body["blobs_removed"].dump() +
                    " blobs, " + body["bytes_freed"].dump() + " bytes freed";
  }
  c.set_header("Content-Type", "application/json");
  c.set_header("Cache-Control", "no-store");
  co_await c.send(status, body.dump() + "\n");
}

// (The JSON is built before co_await: GCC 12 rejects a braced initialiser
// inside an await expression.)
json error_body(const std::string& what) { return json{{"error", what}}; }
json health_body(bool draining) { return json{{"status", draining ? "draining" : "ok"}}; }

Task<> error(http::Conn& c, int status, const std::string& what) {
  json body = error_body(what);
  co_await reply(c, status, body);
}

int status_of(const DbError& e) {
  switch (e.kind()) {
    case DbError::Kind::not_found:
      return 404;
    case DbError::Kind::conflict:
      return 409;
    case DbError::Kind::invalid:
      return 400;
    case DbError::Kind::unavailable:
      return 503;
    case DbError::Kind::no_space:
      return 507;
  }
  return 500;
}

json site_json(const SiteInfo& s, const std::string& base, const AdminOptions& o) {
  return {{"name", s.name},
          {"url", site_url(s.name, base, o.site_tls, o.site_port)},
          {"domains", s.domains},
          {"live_deploy", s.live_deploy ? json(*s.live_deploy) : json(nullptr)},
          {"created_at", s.created_at}};
}

json usage_json(const StoreUsage& u) {
  return {{"deploys", u.deploys},
          {"blobs", u.blobs},
          {"bytes", u.bytes},
          {"disk_bytes", u.disk_bytes},
          {"unreferenced_blobs", u.unreferenced},
          {"unreferenced_disk_bytes", u.unreferenced_disk_bytes}};
}

json gc_json(const GcResult& r) {
  return {{"deploys_removed", r.deploys_removed},
          {"blobs_removed", r.blobs_removed},
          {"tmp_removed", r.tmp_removed},
          {"bytes_freed", r.bytes_freed},
          {"blobs_too_young", r.blobs_too_young}};
}

// Runs a blocking admin action off the loop, mapping errors to statuses.
struct Outcome {
  int status = 200;
  json body;
};

// GCC 12 mishandles closures with non-trivial captures that cross into a
// coroutine or an awaiter (their captures end up freed twice). So the
// actions capture by reference ([&]) from the awaiting frame, which outlives
// the await, and `fn` is passed and captured by reference too.
template <class F>
Task<> run(http::Conn& c, F&& fn) {
  // Named, not a temporary: see the note in host.cpp on GCC 12 and awaiters.
  auto job = runtime::offload([&fn]() -> Outcome {
    try {
      return fn();
    } catch (const DbError& e) {
      return {status_of(e), json{{"error", e.what()}}};
    } catch (const std::length_error& e) {
      return {413, json{{"error", e.what()}}};
    } catch (const std::system_error& e) {
      // A full disk (or quota) fails the change as a whole: the store writes
      // aside and the database commits last, so what was live stays live.
      const std::error_code& code = e.code();
      if (code == std::errc::no_space_on_device || code == std::errc::file_too_large ||
          (code.category() == std::generic_category() && code.value() == EDQUOT))
        return {507, json{{"error", std::string(e.what()) +
                                        "; nothing was changed, the live deploy stays live"}}};
      return {500, json{{"error", e.what()}}};
    } catch (const std::invalid_argument& e) {
      return {400, json{{"error", e.what()}}};
    } catch (const std::exception& e) {
      return {500, json{{"error", e.what()}}};
    }
  });
  Outcome out = co_await job;
  if (out.status == 204) {
    co_await c.send(204, "");
    co_return;
  }
  co_await reply(c, out.status, out.body);
}

// A JSON array of domains, each normalised (normalise_domain); returns the
// error to answer with 400, or "".
std::string read_domains(const json& list, const std::string& base_domain,
                         std::vector<std::string>& out) {
  if (!list.is_array()) return "'domains' must be an array of host names";
  for (const auto& d : list) {
    if (!d.is_string()) return "each domain must be a string";
    try {
      std::string canonical = normalise_domain(d.get<std::string>(), base_domain);
      if (std::find(out.begin(), out.end(), canonical) == out.end()) out.push_back(canonical);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
  }
  return {};
}

// The audit trail's name for an admin write ("" for what it does not
// record: reads, and blob uploads, which a deploy's entry covers), and the
// site its path names.
std::string audit_action(std::string_view method, std::string_view path, std::string& site) {
  if (method == "GET" || method == "HEAD" || path.starts_with("/api/blobs")) return {};
  if (path == "/api/cache/purge") return "purge";
  if (path == "/api/gc") return "gc";
  if (path == "/api/sites") return method == "POST" ? "site.create" : std::string();
  constexpr std::string_view prefix = "/api/sites/";
  if (!path.starts_with(prefix))
    return std::string(method) + " " + std::string(path.substr(0, 100));
  std::string_view rest = path.substr(prefix.size());
  std::string_view sub =
      rest.find('/') == std::string_view::npos ? "" : rest.substr(rest.find('/'));
  site = std::string(rest.substr(0, rest.find('/')).substr(0, 63));
  if (sub.empty() && method == "DELETE") return "site.delete";
  if (sub == "/domains") return "site.domains";
  if (sub == "/certificate")
    return method == "DELETE" ? "certificate.delete" : "certificate.install";
  if (sub == "/deploys") return "deploy";
  if (sub == "/rollback") return "rollback";
  return std::string(method) + " " + std::string(path.substr(0, 100));
}

// Writes an audit entry (blocking: the database) and the matching log line.
void write_audit(Database& db, AuditEntry e) {
  auto line = fmt::format("audit: {} {}{}{} -> {}{}{}", e.peer, e.action,
                          e.site.empty() ? "" : " site=", e.site, e.status,
                          e.detail.empty() ? "" : ": ", e.detail);
  if (e.status >= 400)
    log::warn("{}", line);
  else
    log::info("{}", line);
  try {
    db.add_audit(e);
  } catch (const std::exception& err) {
    log::error("audit: cannot record the entry above: {}", err.what());
  }
}

std::optional<json> parse_json(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace

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

  api.get("/api/sites", [st](http::Conn& c) -> Task<> {
    co_await run(c, [&] {
      json list = json::array();
      for (const auto& s : st->host.database().sites())
        list.push_back(site_json(s, st->host.options().base_domain, st->options));
      return Outcome{200, json{{"sites", list}}};
    });
  });

  api.post("/api/sites", [st](http::Conn& c) -> Task<> {
    std::string body = co_await c.read_body(1024 * 1024);
    auto j = parse_json(body);
    if (!j || !j->is_object() || !(*j)["name"].is_string()) {
      co_await error(c, 400, "expected a JSON object {\"name\": \"...\", \"domains\": [...]}");
      co_return;
    }
    std::string name = (*j)["name"];
    c.assign<AuditNote>().site = name.substr(0, 63);
    std::vector<std::string> domains;
    if (j->contains("domains")) {
      if (auto e = read_domains((*j)["domains"], st->host.options().base_domain, domains);
          !e.empty()) {
        co_await error(c, 400, e);
        co_return;
      }
    }
    co_await run(c, [&] {
      auto s = st->host.database().create_site(name, domains);
      st->host.reload();
      return Outcome{201, site_json(s, st->host.options().base_domain, st->options)};
    });
  });

  api.put("/api/sites/:site/domains", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    std::string body = co_await c.read_body(1024 * 1024);
    auto j = parse_json(body);
    std::vector<std::string> domains;
    std::string e = !j || !j->is_object() || !j->contains("domains")
                        ? "expected a JSON object {\"domains\": [\"example.com\", ...]}"
                        : read_domains((*j)["domains"], st->host.options().base_domain, domains);
    if (!e.empty()) {
      co_await error(c, 400, e);
      co_return;
    }
    co_await run(c, [&] {
      st->host.database().set_domains(name, domains);
      st->host.reload();
      auto s = st->host.database().site(name);
      if (!s) throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      return Outcome{200, site_json(*s, st->host.options().base_domain, st->options)};
    });
  });

  api.put("/api/sites/:site/certificate", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    std::string body = co_await c.read_body(1024 * 1024);
    auto j = parse_json(body);
    if (!j || !j->is_object() || !(*j)["cert"].is_string() || !(*j)["key"].is_string()) {
      co_await error(c, 400,
                     "expected a JSON object {\"cert\": \"PEM chain\", \"key\": \"PEM key\"}");
      co_return;
    }
    co_await run(c, [&] {
      auto site = st->host.database().site(name);
      if (!site) throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      if (st->options.data_dir.empty())
        throw DbError(DbError::Kind::not_found, "this server keeps no certificates");
      CertificateStore certs(st->options.data_dir);
      auto names = certs.install(*site, st->host.options().base_domain,
                                 (*j)["cert"].get<std::string>(), (*j)["key"].get<std::string>());
      log::info("admin: certificate for site {} installed ({})", name, fmt::join(names, ", "));
      st->host.reload();  // every worker picks it up for SNI
      return Outcome{200, json{{"site", name}, {"names", names}}};
    });
  });

  api.del("/api/sites/:site/certificate", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    co_await run(c, [&] {
      if (st->options.data_dir.empty() || !CertificateStore(st->options.data_dir).remove(name))
        throw DbError(DbError::Kind::not_found, "site '" + name + "' has no certificate");
      st->host.reload();
      return Outcome{204, {}};
    });
  });

  api.get("/api/sites/:site", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    co_await run(c, [&] {
      auto s = st->host.database().site(name);
      if (!s) throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      return Outcome{200, site_json(*s, st->host.options().base_domain, st->options)};
    });
  });

  api.del("/api/sites/:site", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    co_await run(c, [&] {
      if (!st->host.database().delete_site(name))
        throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      if (!st->options.data_dir.empty()) CertificateStore(st->options.data_dir).remove(name);
      st->host.reload();
      return Outcome{204, {}};
    });
  });

  api.get("/api/sites/:site/deploys", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    co_await run(c, [&] {
      json list = json::array();
      for (const auto& d : st->host.database().deploys(name))
        list.push_back({{"id", d.id},
                        {"created_at", d.created_at},
                        {"files", d.files},
                        {"bytes", d.bytes},
                        {"live", d.live}});
      return Outcome{200, json{{"site", name}, {"deploys", list}}};
    });
  });

  api.post("/api/sites/:site/deploys", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    if (auto e = site_name_error(name); !e.empty()) {
      co_await error(c, 400, e);
      co_return;
    }
    std::string_view type = c.header("content-type");
    bool archive = type.starts_with("application/gzip") || type.starts_with("application/x-gzip") ||
                   type.starts_with("application/x-tar+gzip");
    bool is_manifest = type.starts_with("application/json");
    if (!archive && !is_manifest) {
      co_await error(c, 415,
                     "send a JSON manifest (application/json) or a .tar.gz (application/gzip)");
      co_return;
    }
    std::string body = co_await c.read_body(st->options.max_upload);
    co_await run(c, [&] {
      std::lock_guard lock(st->deploy_mutex);
      Publisher pub(st->host.store(), st->host.database());
      PublishResult r;
      if (archive) {
        auto files = read_tar_gz(body, st->options.max_upload);
        if (files.empty()) throw std::invalid_argument("the archive holds no files");
        r = pub.publish_files(name, files);
      } else {
        auto j = parse_json(body);
        if (!j || !j->is_object() || !(*j)["files"].is_object())
          throw std::invalid_argument(
              "expected {\"files\": {\"path\": \"sha256\", ...}, \"config\": \"toml text\"}");
        std::vector<std::pair<std::string, std::string>> manifest;
        for (auto& [path, hash] : (*j)["files"].items()) {
          if (!hash.is_string())
            throw std::invalid_argument("the hash for '" + path + "' must be a string");
          manifest.emplace_back(path, hash.get<std::string>());
        }
        if (manifest.empty()) throw std::invalid_argument("the manifest lists no files");
        std::string config = j->contains("config") && (*j)["config"].is_string()
                                 ? (*j)["config"].get<std::string>()
                                 : "";
        r = pub.publish_manifest(name, manifest, config);
      }
      st->host.reload();
      try {
        pub.collect_garbage(st->options.keep_deploys);
      } catch (const std::exception& e) {
        log::warn("admin: garbage collection after deploy {} failed: {}", r.deploy, e.what());
      }
      return Outcome{201, json{{"site", name},
                               {"deploy", r.deploy},
                               {"files", r.files},
                               {"new_blobs", r.new_blobs},
                               {"bytes", r.bytes},
                               {"skipped", r.skipped}}};
    });
  });

  api.post("/api/blobs/missing", [st](http::Conn& c) -> Task<> {
    std::string body = co_await c.read_body(16 * 1024 * 1024);
    auto j = parse_json(body);
    if (!j || !j->is_object() || !(*j)["hashes"].is_array()) {
      co_await error(c, 400, "expected {\"hashes\": [\"sha256\", ...]}");
      co_return;
    }
    std::vector<std::string> hashes;
    for (const auto& h : (*j)["hashes"]) {
      if (!h.is_string() || !is_sha256_hex(h.get<std::string>())) {
        co_await error(c, 400, "every hash must be 64 lowercase hex digits (SHA-256)");
        co_return;
      }
      hashes.push_back(h);
    }
    co_await run(c, [&] {
      json missing = json::array();
      for (const auto& h : hashes)
        if (!st->host.store().has(h)) missing.push_back(h);
      return Outcome{200, json{{"missing", missing}}};
    });
  });

  // Many blobs in one request: a .tar.gz whose entries are named by their
  // SHA-256. A site of thousands of small files publishes in one or a few
  // requests instead of one per file.
  api.post("/api/blobs", [st](http::Conn& c) -> Task<> {
    std::string_view type = c.header("content-type");
    if (!type.starts_with("application/gzip") && !type.starts_with("application/x-gzip")) {
      co_await error(c, 415,
                     "send the blobs as a .tar.gz (application/gzip), each named by its SHA-256");
      co_return;
    }
    std::string body = co_await c.read_body(st->options.max_upload);
    co_await run(c, [&] {
      auto files = read_tar_gz(body, st->options.max_upload);
      // Every entry is checked before the first is stored.
      for (const auto& f : files) {
        if (!is_sha256_hex(f.path))
          throw std::invalid_argument(
              "archive entry '" + f.path.substr(0, 80) +
              "' is not named by a SHA-256 digest (64 lowercase hex digits)");
        if (sha256_hex(f.bytes) != f.path)
          throw std::invalid_argument("archive entry " + f.path + " hashes to " +
                                      sha256_hex(f.bytes) + "; nothing was stored");
      }
      std::uint64_t bytes = 0;
      std::vector<std::pair<std::string, std::string_view>> blobs;
      for (const auto& f : files) {
        blobs.emplace_back(f.path, f.bytes);
        bytes += f.bytes.size();
      }
      std::size_t stored = st->host.store().put_many(blobs);
      return Outcome{201, json{{"received", files.size()}, {"stored", stored}, {"bytes", bytes}}};
    });
  });

  api.put("/api/blobs/:hash", [st](http::Conn& c) -> Task<> {
    std::string hash(c.param("hash"));
    if (!is_sha256_hex(hash)) {
      co_await error(
          c, 400, "'" + hash.substr(0, 80) + "' is not a SHA-256 digest (64 lowercase hex digits)");
      co_return;
    }
    std::string body = co_await c.read_body(st->options.max_upload);
    co_await run(c, [&] {
      if (!st->host.store().put_verified(hash, body))
        throw std::invalid_argument("the uploaded bytes hash to " + sha256_hex(body) + ", not " +
                                    hash + "; nothing was stored");
      return Outcome{201, json{{"hash", hash}, {"size", body.size()}}};
    });
  });

  api.post("/api/sites/:site/rollback", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    std::string body = co_await c.read_body(64 * 1024);
    std::optional<std::int64_t> to;
    if (!body.empty()) {
      auto j = parse_json(body);
      if (!j || !j->is_object() || (j->contains("to") && !(*j)["to"].is_number_integer())) {
        co_await error(c, 400, "expected {} or {\"to\": deploy id}");
        co_return;
      }
      if (j->contains("to")) to = (*j)["to"].get<std::int64_t>();
    }
    co_await run(c, [&] {
      auto live = st->host.database().rollback(name, to);
      st->host.reload();
      return Outcome{200, json{{"site", name}, {"live", live}}};
    });
  });

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
