// The admin API: deploys, blobs and rollbacks.
#include "host/admin_internal.hpp"

namespace atl::host::admin_detail {

void content_routes(web::Router& api, std::shared_ptr<AdminState> st) {
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
}

}  // namespace atl::host::admin_detail
