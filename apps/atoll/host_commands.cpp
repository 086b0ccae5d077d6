#include "host_commands.hpp"

#include "http_client.hpp"

#include "host/archive.hpp"

#include <atoll/host/database.hpp>
#include <atoll/host/deploy_bell.hpp>
#include <atoll/host/publish.hpp>
#include <atoll/host/store.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

namespace atl::app {

using nlohmann::json;

namespace {

std::string token_of(const HostTarget& t) {
  if (!t.token.empty()) return t.token;
  const char* env = std::getenv("ATOLL_TOKEN");
  return env ? env : "";
}

// The admin API of the server that --server names.
HttpResponse call(const HostTarget& t, const std::string& method, const std::string& path,
                  const std::string& content_type = "", const std::string& body = "") {
  return http_request({.base_url = t.server, .token = token_of(t), .ca_file = t.ca}, method, path,
                      content_type, body);
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Checks an admin API answer; throws with the server's error message.
json expect(const HttpResponse& r, std::initializer_list<int> ok, const std::string& what) {
  bool good = false;
  for (int s : ok) good = good || r.status == s;
  auto j = json::parse(r.body, nullptr, false);
  if (!good) {
    std::string msg = !j.is_discarded() && j.is_object() && j.contains("error")
                          ? j["error"].get<std::string>()
                          : r.body;
    if (r.status == 401)
      msg += " (pass --token or set ATOLL_TOKEN; the token is in the server's DATA/admin.token)";
    throw std::runtime_error(what + ": HTTP " + std::to_string(r.status) + ": " + msg);
  }
  return j.is_discarded() ? json::object() : j;
}

// Says which hidden names the deploy left out, so an operator who meant to
// publish one knows to list it in _atoll.toml's include_hidden.
void say_skipped(const std::vector<std::string>& skipped) {
  if (skipped.empty()) return;
  std::string list;
  for (const auto& p : skipped) list += (list.empty() ? "" : ", ") + p;
  std::printf(
      "not deployed (hidden; list a name in _atoll.toml's include_hidden to deploy it): %s\n",
      list.c_str());
}

int fail(const std::exception& e) {
  std::fprintf(stderr, "atoll: %s\n", e.what());
  return 1;
}

struct Local {
  std::shared_ptr<host::Database> db;
  std::unique_ptr<host::ContentStore> store;
  // A command that only reads (sites, deploys, token) never creates a data
  // directory: a mistyped --data is an error that names the path.
  explicit Local(const std::string& data, bool create = true) {
    struct stat st;
    if (::stat(data.c_str(), &st) != 0) {
      if (!create)
        throw std::runtime_error("no data directory at '" + data +
                                 "' (give --data DIR, or --server URL for a running server)");
      if (::mkdir(data.c_str(), 0750) != 0)
        throw std::runtime_error("cannot create data directory '" + data + "'");
    } else if (!create && ::stat((data + "/atoll.db").c_str(), &st) != 0) {
      throw std::runtime_error("'" + data + "' holds no atoll.db: it is not a data directory");
    }
    db = host::open_sqlite(data + "/atoll.db");
    store = std::make_unique<host::ContentStore>(data);
  }
};

std::string when(std::int64_t t) {
  std::time_t tt = t;
  std::tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

// 1536 -> "1.5 KiB".
std::string human(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

void say_usage(const host::StoreUsage& u) {
  std::printf("store: %zu blobs, %s (%s on disk) for %zu deploys; %zu unreferenced (%s on disk)\n",
              u.blobs, human(u.bytes).c_str(), human(u.disk_bytes).c_str(), u.deploys,
              u.unreferenced, human(u.unreferenced_disk_bytes).c_str());
}

// The admin API's answers (GET /api/store, POST /api/gc) as the structs.
host::StoreUsage usage_from(const json& j) {
  return {.deploys = j.at("deploys"),
          .blobs = j.at("blobs"),
          .bytes = j.at("bytes"),
          .disk_bytes = j.at("disk_bytes"),
          .unreferenced = j.at("unreferenced_blobs"),
          .unreferenced_disk_bytes = j.at("unreferenced_disk_bytes")};
}

host::GcResult gc_from(const json& j) {
  return {.deploys_removed = j.at("deploys_removed"),
          .blobs_removed = j.at("blobs_removed"),
          .tmp_removed = j.at("tmp_removed"),
          .bytes_freed = j.at("bytes_freed"),
          .blobs_too_young = j.at("blobs_too_young")};
}

}  // namespace

void add_target_options(CLI::App& cmd, HostTarget& t) {
  cmd.add_option("--data", t.data, "Local data directory (when no --server)")
      ->capture_default_str();
  cmd.add_option("--server", t.server, "Admin API of a running server, e.g. http://127.0.0.1:8081");
  cmd.add_option("--token", t.token, "Admin token (default: $ATOLL_TOKEN)");
  cmd.add_option("--ca", t.ca, "PEM CA certificates to trust for an https:// --server")
      ->check(CLI::ExistingFile);
}

int run_publish(const PublishSettings& s) {
  try {
    if (auto e = host::site_name_error(s.site); !e.empty()) throw std::invalid_argument(e);
    if (s.target.server.empty()) {
      Local local(s.target.data);
      host::Publisher pub(*local.store, *local.db);
      auto r = pub.publish_dir(s.site, s.dir);
      pub.collect_garbage(10);
      host::ring_deploy_bell(s.target.data);
      say_skipped(r.skipped);
      std::printf("deploy %lld of %s is live: %zu files, %zu new blobs, %llu bytes\n",
                  static_cast<long long>(r.deploy), s.site.c_str(), r.files, r.new_blobs,
                  static_cast<unsigned long long>(r.bytes));
      return 0;
    }
    // Remote: a manifest of hashes; upload only the blobs the server lacks.
    // The hidden-name rule is applied here too: a secret never leaves the machine.
    host::SiteConfig site_config = host::read_site_config(s.dir);
    std::vector<std::string> skipped;
    std::vector<std::string> paths =
        host::publishable_files(s.dir, site_config.include_hidden, &skipped);
    json files = json::object();
    std::map<std::string, std::string> by_hash;
    std::string config;
    for (const auto& p : paths) {
      host::validate_publish_path(p);
      std::string bytes = read_all(s.dir + "/" + p);
      if (p == host::site_config_file) {
        config = bytes;
        continue;
      }
      std::string h = host::sha256_hex(bytes);
      files[p] = h;
      by_hash[h] = s.dir + "/" + p;
    }
    json hashes = json::array();
    for (const auto& [h, _] : by_hash) hashes.push_back(h);
    auto missing = expect(call(s.target, "POST", "/api/blobs/missing", "application/json",
                               json{{"hashes", hashes}}.dump()),
                          {200}, "asking which files the server lacks")["missing"];
    // The missing blobs go up in batches of up to 32 MiB, a .tar.gz each.
    std::vector<host::PublishFile> batch;
    std::size_t batch_bytes = 0;
    auto send_batch = [&] {
      if (batch.empty()) return;
      expect(call(s.target, "POST", "/api/blobs", "application/gzip", host::write_tar_gz(batch)),
             {201}, "uploading " + std::to_string(batch.size()) + " files");
      batch.clear();
      batch_bytes = 0;
    };
    for (const auto& h : missing) {
      std::string hash = h.get<std::string>();
      std::string bytes = read_all(by_hash[hash]);
      batch_bytes += bytes.size();
      batch.push_back({hash, std::move(bytes)});
      if (batch_bytes >= 32 * 1024 * 1024) send_batch();
    }
    send_batch();
    json body = {{"files", files}};
    if (!config.empty()) body["config"] = config;
    auto r = expect(call(s.target, "POST", "/api/sites/" + s.site + "/deploys", "application/json",
                         body.dump()),
                    {201}, "creating the deploy");
    say_skipped(skipped);
    std::printf("deploy %lld of %s is live: %zu files, %zu uploaded\n",
                static_cast<long long>(r["deploy"].get<std::int64_t>()), s.site.c_str(),
                r["files"].get<std::size_t>(), missing.size());
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int run_rollback(const RollbackSettings& s) {
  try {
    std::int64_t live;
    if (s.target.server.empty()) {
      Local local(s.target.data);
      live = local.db->rollback(s.site, s.to ? std::optional<std::int64_t>(*s.to) : std::nullopt);
      host::ring_deploy_bell(s.target.data);
    } else {
      json body = json::object();
      if (s.to) body["to"] = *s.to;
      live = expect(call(s.target, "POST", "/api/sites/" + s.site + "/rollback", "application/json",
                         body.dump()),
                    {200}, "rolling back")["live"];
    }
    std::printf("%s: deploy %lld is live\n", s.site.c_str(), static_cast<long long>(live));
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int run_sites(const ListSettings& s) {
  try {
    if (s.target.server.empty()) {
      Local local(s.target.data, false);
      std::printf("%-24s %-8s %s\n", "SITE", "LIVE", "DOMAINS");
      for (const auto& site : local.db->sites()) {
        std::string domains;
        for (const auto& d : site.domains) domains += (domains.empty() ? "" : ",") + d;
        std::printf("%-24s %-8s %s\n", site.name.c_str(),
                    site.live_deploy ? std::to_string(*site.live_deploy).c_str() : "-",
                    domains.c_str());
      }
    } else {
      auto j = expect(call(s.target, "GET", "/api/sites"), {200}, "listing sites");
      std::printf("%-24s %-8s %s\n", "SITE", "LIVE", "DOMAINS");
      for (const auto& site : j["sites"]) {
        std::string domains;
        for (const auto& d : site["domains"])
          domains += (domains.empty() ? "" : ",") + d.get<std::string>();
        std::printf("%-24s %-8s %s\n", site["name"].get<std::string>().c_str(),
                    site["live_deploy"].is_null()
                        ? "-"
                        : std::to_string(site["live_deploy"].get<std::int64_t>()).c_str(),
                    domains.c_str());
      }
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int run_deploys(const ListSettings& s) {
  try {
    if (s.target.server.empty()) {
      Local local(s.target.data, false);
      std::printf("%-8s %-22s %8s %12s %s\n", "DEPLOY", "CREATED", "FILES", "BYTES", "");
      for (const auto& d : local.db->deploys(s.site))
        std::printf("%-8lld %-22s %8lld %12llu %s\n", static_cast<long long>(d.id),
                    when(d.created_at).c_str(), static_cast<long long>(d.files),
                    static_cast<unsigned long long>(d.bytes), d.live ? "live" : "");
    } else {
      auto j = expect(call(s.target, "GET", "/api/sites/" + s.site + "/deploys"), {200},
                      "listing deploys");
      std::printf("%-8s %-22s %8s %12s %s\n", "DEPLOY", "CREATED", "FILES", "BYTES", "");
      for (const auto& d : j["deploys"])
        std::printf("%-8lld %-22s %8lld %12llu %s\n",
                    static_cast<long long>(d["id"].get<std::int64_t>()),
                    when(d["created_at"].get<std::int64_t>()).c_str(),
                    static_cast<long long>(d["files"].get<std::int64_t>()),
                    static_cast<unsigned long long>(d["bytes"].get<std::uint64_t>()),
                    d["live"].get<bool>() ? "live" : "");
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int run_store(const HostTarget& t) {
  try {
    if (t.server.empty()) {
      Local local(t.data, false);
      say_usage(host::Publisher(*local.store, *local.db).usage());
    } else {
      say_usage(
          usage_from(expect(call(t, "GET", "/api/store"), {200}, "reading the store's size")));
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int run_gc(const GcSettings& s) {
  try {
    host::GcResult r;
    host::StoreUsage after;
    if (s.target.server.empty()) {
      Local local(s.target.data, false);
      host::Publisher pub(*local.store, *local.db);
      r = pub.collect_garbage(s.keep, s.grace_s);
      after = pub.usage();
    } else {
      auto j = expect(call(s.target, "POST", "/api/gc", "application/json",
                           json{{"keep", s.keep}, {"grace_s", s.grace_s}}.dump()),
                      {200}, "collecting garbage");
      r = gc_from(j);
      after = usage_from(j.at("store"));
    }
    std::printf("removed %zu old deploys, %zu blobs and %zu upload leftovers: %s freed\n",
                r.deploys_removed, r.blobs_removed, r.tmp_removed, human(r.bytes_freed).c_str());
    if (r.blobs_too_young)
      std::printf(
          "kept %zu unreferenced blobs younger than %llds (a publish may be uploading them; "
          "--grace 0 collects them too)\n",
          r.blobs_too_young, static_cast<long long>(s.grace_s));
    say_usage(after);
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int run_token(const HostTarget& t) {
  try {
    std::string path = t.data + "/admin.token";
    std::string token = read_all(path);
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
    if (token.empty())
      throw std::runtime_error("no admin token in '" + path +
                               "' (it is made at the first `atoll serve --data " + t.data + "`)");
    std::printf("%s\n", token.c_str());
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int run_site_command(const SiteCommand& s) {
  try {
    if (auto e = host::site_name_error(s.site); !e.empty() && s.action != "purge")
      throw std::invalid_argument(e);
    if (s.target.server.empty()) {
      if (s.action == "purge")
        throw std::invalid_argument(
            "purge empties a running server's caches: give --server URL (a local deploy is seen "
            "by the server on its own)");
      Local local(s.target.data, s.action == "create");
      std::vector<std::string> domains;
      for (const auto& d : s.domains) domains.push_back(host::normalise_domain(d, s.base_domain));
      if (s.action == "create") {
        local.db->create_site(s.site, domains);
        std::printf("site %s created\n", s.site.c_str());
      } else if (s.action == "delete") {
        if (!local.db->delete_site(s.site))
          throw std::runtime_error("no site named '" + s.site + "'");
        std::printf("site %s deleted\n", s.site.c_str());
      } else {
        local.db->set_domains(s.site, domains);
        std::printf("site %s answers to %zu custom domain(s)\n", s.site.c_str(), domains.size());
      }
      host::ring_deploy_bell(s.target.data);
      return 0;
    }
    if (s.action == "create")
      expect(call(s.target, "POST", "/api/sites", "application/json",
                  json{{"name", s.site}, {"domains", s.domains}}.dump()),
             {201}, "creating site " + s.site);
    else if (s.action == "delete")
      expect(call(s.target, "DELETE", "/api/sites/" + s.site), {204}, "deleting site " + s.site);
    else if (s.action == "domains")
      expect(call(s.target, "PUT", "/api/sites/" + s.site + "/domains", "application/json",
                  json{{"domains", s.domains}}.dump()),
             {200}, "setting the domains of " + s.site);
    else
      expect(call(s.target, "POST", "/api/cache/purge"), {204}, "purging the caches");
    std::printf("%s: done\n", s.action.c_str());
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

}  // namespace atl::app
