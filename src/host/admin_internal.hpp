#pragma once
// What the admin API's files share (admin.cpp: the token check, the audit
// trail and the upkeep routes; admin_sites.cpp: sites, domains and
// certificates; admin_content.cpp: deploys, blobs and rollbacks).
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

namespace atl::host::admin_detail {

using nlohmann::json;

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

inline Task<> reply(http::Conn& c, int status, const json& body) {
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
inline json error_body(const std::string& what) { return json{{"error", what}}; }
inline json health_body(bool draining) { return json{{"status", draining ? "draining" : "ok"}}; }

inline Task<> error(http::Conn& c, int status, const std::string& what) {
  json body = error_body(what);
  co_await reply(c, status, body);
}

inline int status_of(const DbError& e) {
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

inline json site_json(const SiteInfo& s, const std::string& base, const AdminOptions& o) {
  return {{"name", s.name},
          {"url", site_url(s.name, base, o.site_tls, o.site_port)},
          {"domains", s.domains},
          {"live_deploy", s.live_deploy ? json(*s.live_deploy) : json(nullptr)},
          {"created_at", s.created_at}};
}

inline json usage_json(const StoreUsage& u) {
  return {{"deploys", u.deploys},
          {"blobs", u.blobs},
          {"bytes", u.bytes},
          {"disk_bytes", u.disk_bytes},
          {"unreferenced_blobs", u.unreferenced},
          {"unreferenced_disk_bytes", u.unreferenced_disk_bytes}};
}

inline json gc_json(const GcResult& r) {
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
inline Task<> run(http::Conn& c, F&& fn) {
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
inline std::string read_domains(const json& list, const std::string& base_domain,
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
inline std::string audit_action(std::string_view method, std::string_view path, std::string& site) {
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
inline void write_audit(Database& db, AuditEntry e) {
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

inline std::optional<json> parse_json(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

/// The routes, by group.
void site_routes(web::Router& api, std::shared_ptr<AdminState> st);
void content_routes(web::Router& api, std::shared_ptr<AdminState> st);

}  // namespace atl::host::admin_detail
