#pragma once
// The admin API: its own listener (loopback by default), a bearer token.
//
//   GET    /health                          open: {"status":"ok"} (503 draining)
//   GET    /metrics                         Prometheus text
//   GET    /api/sites                       list
//   POST   /api/sites                       {"name": "...", "domains": [...]}  → 201
//   GET    /api/sites/:site                 {"name", "url", "domains", "live_deploy", ...}
//   DELETE /api/sites/:site                 → 204
//   GET    /api/sites/:site/deploys         list, newest first
//   POST   /api/sites/:site/deploys         JSON manifest {"files": {path: sha256}, "config":
//   "toml"}
//                                           or a .tar.gz body (Content-Type: application/gzip) →
//                                           201
//   POST   /api/blobs/missing               {"hashes": [...]} → {"missing": [...]}
//   PUT    /api/blobs/:hash                 the blob's bytes; 400 if they do not hash to :hash
//   POST   /api/blobs                       a .tar.gz of blobs named by their hashes → 201
//   PUT    /api/sites/:site/domains         {"domains": [...]} → the site
//   PUT    /api/sites/:site/certificate     {"cert": "PEM chain", "key": "PEM key"} → {"names"}
//   DELETE /api/sites/:site/certificate     → 204 (404 if it had none)
//   POST   /api/sites/:site/rollback        {"to": id} (optional) → {"live": id}
//   POST   /api/cache/purge                 → 204
//   GET    /api/store                       {"blobs", "bytes", "disk_bytes",
//                                            "unreferenced_blobs", ...}
//   POST   /api/gc                          {"keep": N, "grace_s": S} (optional) → what was freed,
//                                           and "store" after: old deploys and unreferenced
//                                           blobs older than S (default 600) go now
//   GET    /api/audit?site=&limit=          the audit trail, newest first (limit ≤ 10000)
//
// Every write (not blob uploads: their deploy is) and every refused token is
// logged ("audit: PEER ACTION site=S -> STATUS: detail") and kept in the
// database; refused tokens at most 10 a second per worker, then one entry
// saying how many were left out.
//
// Errors are JSON {"error": "..."} with 400 (bad input, naming the rule),
// 401 (no or wrong token), 404, 409 (exists), 413 (over the upload limit),
// 415 (unknown body type), 503 (database unavailable) and 507 (no space
// left on the data directory's disk: nothing was changed).
#include <atoll/host/host.hpp>
#include <atoll/http/conn.hpp>
#include <atoll/net/server.hpp>

#include <functional>
#include <string>

namespace atl::host {

struct AdminOptions {
  /// Compared in constant time with the request's bearer token.
  std::string token;
  /// Largest blob or archive accepted. Default 256 MiB: a site's biggest
  /// asset, with room; larger uploads get 413 before they are read.
  std::size_t max_upload = 256 * 1024 * 1024;
  /// Deploys kept per site after each deploy; older ones and unreferenced
  /// blobs are collected. Default 10: rollbacks reach back that far.
  std::size_t keep_deploys = 10;
  /// The public server, for connection counts and loop lag in /metrics.
  std::function<net::ServerInfo()> server_info;
  /// Says whether the process is draining (health answers 503 then).
  std::function<bool()> draining;
  /// The data directory, for per-site certificates (DATA/certs); empty: the
  /// certificate endpoints answer 404.
  std::string data_dir;
  /// How sites are reached, for the `url` of each site: https under TLS,
  /// and the public listener's port (0 or the scheme's default: none).
  bool site_tls = false;
  std::uint16_t site_port = 0;
};

/// "http://NAME.BASE:PORT/", the port left out when it is the scheme's
/// default (80, 443) or 0.
std::string site_url(std::string_view name, std::string_view base_domain, bool tls,
                     std::uint16_t port);

/// The admin API as an App.
http::App admin_api(Host& host, AdminOptions options);

/// Reads DIR/admin.token, or creates it (mode 0600, 32 random bytes in hex)
/// and sets `created`. Throws std::runtime_error naming the file.
std::string load_or_create_token(const std::string& data_dir, bool& created);

}  // namespace atl::host
