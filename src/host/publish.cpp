#include <atoll/host/publish.hpp>

#include "host/precompress.hpp"

#include <atoll/http/headers.hpp>
#include <atoll/web/mime.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>
#include <sstream>
#include <stdexcept>

namespace atl::host {

namespace {

// Precompressed variants are kept only where they pay for their space: a
// file of at least 1 KiB (below that a variant saves little on the wire and
// costs a whole filesystem block on disk), and a variant at least 10 % and
// 256 bytes smaller than the file.
constexpr std::size_t precompress_min = 1024;
bool worth_keeping(std::size_t variant, std::size_t original) {
  return variant * 10 <= original * 9 && variant + 256 <= original;
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read '" + path + "': " + std::strerror(errno));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw std::runtime_error("cannot read '" + path + "': " + std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, std::size_t(n));
  }
  ::close(fd);
  return out;
}

void walk(const std::string& root, const std::string& rel,
          const std::vector<std::string>& include_hidden, std::vector<std::string>& out,
          std::vector<std::string>* skipped) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw std::runtime_error("cannot list '" + dir + "': " + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::string r = rel.empty() ? name : rel + "/" + name;
    std::string full = root + "/" + r;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) throw std::runtime_error("cannot stat '" + full + "'");
    if (name.front() == '.' && !hidden_name_allowed(name, S_ISDIR(st.st_mode), include_hidden)) {
      if (skipped) skipped->push_back(S_ISDIR(st.st_mode) ? r + "/" : r);
      continue;
    }
    if (S_ISLNK(st.st_mode))
      throw std::invalid_argument("'" + full +
                                  "' is a symlink: publish the file itself (symlinks are refused "
                                  "so nothing outside the directory is published)");
    if (S_ISDIR(st.st_mode))
      walk(root, r, include_hidden, out, skipped);
    else if (S_ISREG(st.st_mode))
      out.push_back(r);
  }
}

DbError duplicate_path(std::string_view path) {
  return DbError(DbError::Kind::invalid,
                 "path '" + std::string(path.substr(0, 200)) + "' appears twice in the deploy");
}

}  // namespace

bool hidden_name_allowed(std::string_view name, bool is_directory,
                         const std::vector<std::string>& include_hidden) {
  if (!name.starts_with('.')) return true;
  if (is_directory && name == ".well-known") return true;
  return std::find(include_hidden.begin(), include_hidden.end(), name) != include_hidden.end();
}

std::string hidden_refusal(std::string_view path, const std::vector<std::string>& include_hidden) {
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t slash = path.find('/', pos);
    bool last = slash == std::string_view::npos;
    std::string_view seg = path.substr(pos, last ? std::string_view::npos : slash - pos);
    if (!hidden_name_allowed(seg, !last, include_hidden))
      return std::string(path.substr(0, last ? path.size() : slash + 1));
    if (last) break;
    pos = slash + 1;
  }
  return {};
}

std::vector<std::string> publishable_files(const std::string& dir,
                                           const std::vector<std::string>& include_hidden,
                                           std::vector<std::string>* skipped) {
  std::vector<std::string> paths;
  walk(dir, "", include_hidden, paths, skipped);
  return paths;
}

SiteConfig read_site_config(const std::string& dir) {
  std::string file = dir + "/" + std::string(site_config_file);
  struct stat st;
  if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  return parse_site_config(read_file(file), file);
}

void validate_publish_path(std::string_view p) {
  auto bad = [&](const char* why) {
    throw std::invalid_argument("path '" + std::string(p.substr(0, 200)) + "' " + why);
  };
  if (p.empty()) bad("is empty");
  if (p.front() == '/') bad("is absolute");
  if (p.size() > 1024) bad("is longer than 1024 bytes");
  for (unsigned char c : p)
    if (c < 0x20 || c == 0x7f || c == '\\') bad("holds a control character or a backslash");
  std::size_t pos = 0;
  while (pos <= p.size()) {
    std::size_t slash = p.find('/', pos);
    std::string_view seg =
        p.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (seg.empty()) bad("has an empty segment");
    if (seg == "..") bad("climbs out with '..'");
    if (seg == ".") bad("has a '.' segment");
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
}

std::string SiteConfig::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (!not_found.empty()) j["not_found"] = not_found;
  if (!spa.empty()) j["spa"] = spa;
  for (const auto& r : redirects)
    j["redirects"].push_back({{"from", r.from}, {"to", r.to}, {"status", r.status}});
  for (const auto& h : headers)
    j["headers"].push_back({{"path", h.path}, {"name", h.name}, {"value", h.value}});
  if (!include_hidden.empty()) j["include_hidden"] = include_hidden;
  if (!clean_urls) j["clean_urls"] = false;
  return j.dump();
}

SiteConfig SiteConfig::from_json(std::string_view text) {
  SiteConfig c;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return c;
  c.not_found = j.value("not_found", "");
  c.spa = j.value("spa", "");
  if (j.contains("redirects"))
    for (const auto& r : j["redirects"])
      c.redirects.push_back({r.value("from", ""), r.value("to", ""), r.value("status", 301)});
  if (j.contains("headers"))
    for (const auto& h : j["headers"])
      c.headers.push_back({h.value("path", "/"), h.value("name", ""), h.value("value", "")});
  if (j.contains("include_hidden") && j["include_hidden"].is_array())
    for (const auto& n : j["include_hidden"])
      if (n.is_string()) c.include_hidden.push_back(n);
  if (auto it = j.find("clean_urls"); it != j.end() && it->is_boolean()) c.clean_urls = *it;
  return c;
}

SiteConfig parse_site_config(std::string_view text, const std::string& file) {
  toml::table t;
  try {
    t = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << file << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    throw std::invalid_argument(msg.str());
  }
  auto where = [&](const toml::node& n) {
    return file + ":" + std::to_string(n.source().begin.line) + ":" +
           std::to_string(n.source().begin.column) + ": ";
  };
  auto string_of = [&](const toml::node& n, const char* key) {
    if (!n.is_string()) throw std::invalid_argument(where(n) + "'" + key + "' must be a string");
    return std::string(*n.as_string());
  };
  SiteConfig c;
  static const std::set<std::string> known = {"not_found", "spa",        "redirects",
                                              "headers",   "clean_urls", "include_hidden"};
  for (auto& [k, v] : t) {
    if (!known.count(std::string(k.str())))
      throw std::invalid_argument(
          where(v) + "unknown setting '" + std::string(k.str()) +
          "' (known: not_found, spa, redirects, headers, clean_urls, include_hidden)");
  }
  if (auto* n = t.get("clean_urls")) {
    if (!n->is_boolean())
      throw std::invalid_argument(where(*n) + "'clean_urls' must be true or false");
    c.clean_urls = **n->as_boolean();
  }
  if (auto* n = t.get("include_hidden")) {
    auto* arr = n->as_array();
    if (!arr)
      throw std::invalid_argument(
          where(*n) + "'include_hidden' must be an array of names, e.g. [\".nojekyll\"]");
    for (auto& item : *arr) {
      std::string name = string_of(item, "include_hidden");
      if (name.size() < 2 || name.front() != '.' || name == ".." ||
          name.find('/') != std::string::npos)
        throw std::invalid_argument(where(item) + "'include_hidden' entry '" + name.substr(0, 80) +
                                    "' must be one hidden name (starts with '.', no '/')");
      c.include_hidden.push_back(std::move(name));
    }
  }
  // A page path that could climb out of the site is an error in the file,
  // so it says FILE:LINE:COL like the others.
  auto page = [&](const char* key, std::string& out) {
    auto* n = t.get(key);
    if (!n) return;
    out = string_of(*n, key);
    if (out.empty()) return;
    if (out.front() == '/') out.erase(0, 1);
    try {
      validate_publish_path(out);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where(*n) + "'" + key + "': " + e.what());
    }
  };
  page("not_found", c.not_found);
  page("spa", c.spa);
  if (auto* n = t.get("redirects")) {
    auto* arr = n->as_array();
    if (!arr)
      throw std::invalid_argument(where(*n) +
                                  "'redirects' must be an array of tables ([[redirects]])");
    for (auto& item : *arr) {
      auto* r = item.as_table();
      if (!r) throw std::invalid_argument(where(item) + "each redirect must be a table");
      SiteConfig::Redirect red;
      auto* from = r->get("from");
      auto* to = r->get("to");
      if (!from || !to)
        throw std::invalid_argument(where(item) + "a redirect needs 'from' and 'to'");
      red.from = string_of(*from, "from");
      red.to = string_of(*to, "to");
      if (red.from.empty() || red.from.front() != '/')
        throw std::invalid_argument(where(*from) + "'from' must start with '/'");
      for (unsigned char ch : red.to)
        if (ch < 0x20 || ch == 0x7f)
          throw std::invalid_argument(where(*to) + "'to' holds a control character");
      if (auto* st = r->get("status")) {
        auto v = st->value<std::int64_t>();
        if (!v || (*v != 301 && *v != 302 && *v != 307 && *v != 308))
          throw std::invalid_argument(where(*st) + "'status' must be 301, 302, 307 or 308");
        red.status = int(*v);
      }
      c.redirects.push_back(std::move(red));
    }
  }
  if (auto* n = t.get("headers")) {
    auto* arr = n->as_array();
    if (!arr)
      throw std::invalid_argument(where(*n) + "'headers' must be an array of tables ([[headers]])");
    for (auto& item : *arr) {
      auto* h = item.as_table();
      if (!h) throw std::invalid_argument(where(item) + "each header rule must be a table");
      SiteConfig::HeaderRule rule;
      rule.path = h->get("path") ? string_of(*h->get("path"), "path") : "/";
      auto* name = h->get("name");
      auto* value = h->get("value");
      if (!name || !value)
        throw std::invalid_argument(where(item) + "a header rule needs 'name' and 'value'");
      rule.name = string_of(*name, "name");
      rule.value = string_of(*value, "value");
      try {
        http::validate_header(rule.name, rule.value);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(where(item) + e.what());
      }
      c.headers.push_back(std::move(rule));
    }
  }
  return c;
}

FileRecord Publisher::record(const std::string& path, std::string_view bytes,
                             std::size_t* new_blobs) {
  FileRecord r;
  r.path = path;
  r.size = bytes.size();
  r.mime = std::string(web::mime_type(path));
  auto put = [&](std::string_view b) {
    std::string h = sha256_hex(b);
    if (!store_.has(h)) {
      store_.put(b);
      if (new_blobs) ++*new_blobs;
    }
    return h;
  };
  r.hash = put(bytes);
  if (reuse_from_) {
    // Unchanged since the live deploy: its variants stand (compressing at
    // the highest levels is most of a deploy's time).
    if (auto prev = db_.resolve(*reuse_from_, path);
        prev && prev->hash == r.hash && prev->mime == r.mime) {
      bool present = true;
      for (const std::string* h : {&prev->br, &prev->zst, &prev->gz})
        present = present && (h->empty() || store_.has(*h));
      if (present) {
        prev->path = path;
        return *prev;
      }
    }
  }
  if (web::is_compressible(r.mime) && bytes.size() >= precompress_min) {
    auto keep = [&](std::string c, std::string& hash, std::uint64_t& size) {
      if (worth_keeping(c.size(), bytes.size())) {
        hash = put(c);
        size = c.size();
      }
    };
    keep(brotli_max(bytes), r.br, r.br_size);
    keep(zstd_max(bytes), r.zst, r.zst_size);
    keep(gzip_max(bytes), r.gz, r.gz_size);
  }
  return r;
}

PublishResult Publisher::publish_files(const std::string& site,
                                       const std::vector<PublishFile>& files) {
  if (auto e = site_name_error(site); !e.empty()) throw DbError(DbError::Kind::invalid, e);
  ReuseLive reuse(*this, site);
  // Every check comes before the first blob is stored: a refused publish
  // leaves nothing behind (not even blobs waiting for garbage collection).
  std::set<std::string_view> seen;
  SiteConfig config;
  for (const auto& f : files) {
    validate_publish_path(f.path);
    if (!seen.insert(f.path).second) throw duplicate_path(f.path);
    if (f.path == site_config_file) config = parse_site_config(f.bytes, f.path);
  }
  PublishResult result;
  std::set<std::string> skipped;
  std::vector<FileRecord> records;
  for (const auto& f : files) {
    if (f.path == site_config_file) continue;
    if (auto refused = hidden_refusal(f.path, config.include_hidden); !refused.empty()) {
      skipped.insert(std::move(refused));
      continue;
    }
    records.push_back(record(f.path, f.bytes, &result.new_blobs));
    result.bytes += f.bytes.size();
  }
  result.files = records.size();
  result.skipped.assign(skipped.begin(), skipped.end());
  result.deploy = db_.create_deploy(site, records, config.to_json());
  return result;
}

PublishResult Publisher::publish_dir(const std::string& site, const std::string& dir) {
  if (auto e = site_name_error(site); !e.empty()) throw DbError(DbError::Kind::invalid, e);
  ReuseLive reuse(*this, site);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::invalid_argument("'" + dir + "' is not a directory");
  // The config and the paths are checked before the first blob is stored.
  SiteConfig config = read_site_config(dir);
  PublishResult result;
  std::vector<std::string> paths = publishable_files(dir, config.include_hidden, &result.skipped);
  for (const auto& p : paths) validate_publish_path(p);
  std::vector<FileRecord> records;
  for (const auto& p : paths) {
    if (p == site_config_file) continue;
    std::string bytes = read_file(dir + "/" + p);
    records.push_back(record(p, bytes, &result.new_blobs));
    result.bytes += bytes.size();
  }
  result.files = records.size();
  result.deploy = db_.create_deploy(site, records, config.to_json());
  return result;
}

PublishResult Publisher::publish_manifest(
    const std::string& site, const std::vector<std::pair<std::string, std::string>>& manifest,
    const std::string& config_toml) {
  if (auto e = site_name_error(site); !e.empty()) throw DbError(DbError::Kind::invalid, e);
  ReuseLive reuse(*this, site);
  // Every check comes before record() stores the first variant.
  std::set<std::string_view> seen;
  for (const auto& [path, hash] : manifest) {
    validate_publish_path(path);
    if (!seen.insert(path).second) throw duplicate_path(path);
    if (!is_sha256_hex(hash))
      throw DbError(DbError::Kind::invalid,
                    "'" + hash + "' (for " + path + ") is not a SHA-256 hex digest");
    if (!store_.has(hash))
      throw DbError(DbError::Kind::invalid,
                    "blob " + hash + " (for " + path + ") has not been uploaded");
  }
  SiteConfig config = config_toml.empty()
                          ? SiteConfig{}
                          : parse_site_config(config_toml, std::string(site_config_file));
  PublishResult result;
  std::set<std::string> skipped;
  std::vector<FileRecord> records;
  for (const auto& [path, hash] : manifest) {
    if (auto refused = hidden_refusal(path, config.include_hidden); !refused.empty()) {
      skipped.insert(std::move(refused));
      continue;
    }
    std::string bytes = read_file(store_.path(hash));
    records.push_back(record(path, bytes, &result.new_blobs));
    result.bytes += bytes.size();
  }
  result.files = records.size();
  result.skipped.assign(skipped.begin(), skipped.end());
  result.deploy = db_.create_deploy(site, records, config.to_json());
  return result;
}

StoreUsage Publisher::usage() {
  StoreUsage u;
  for (const auto& s : db_.sites()) u.deploys += db_.deploys(s.name).size();
  auto referenced = db_.referenced_hashes();
  std::set<std::string> live(referenced.begin(), referenced.end());
  for (const auto& h : store_.list()) {
    struct stat st;
    if (::stat(store_.path(h).c_str(), &st) != 0) continue;  // (collected meanwhile)
    ++u.blobs;
    u.bytes += std::uint64_t(st.st_size);
    u.disk_bytes += std::uint64_t(st.st_blocks) * 512;
    if (!live.count(h)) {
      ++u.unreferenced;
      u.unreferenced_disk_bytes += std::uint64_t(st.st_blocks) * 512;
    }
  }
  return u;
}

GcResult Publisher::collect_garbage(std::size_t keep, std::int64_t min_age_s) {
  GcResult r;
  for (const auto& s : db_.sites()) r.deploys_removed += db_.prune(s.name, keep);
  auto referenced = db_.referenced_hashes();
  std::set<std::string> live(referenced.begin(), referenced.end());
  std::int64_t now = std::int64_t(std::time(nullptr));
  for (const auto& h : store_.list()) {
    if (live.count(h)) continue;
    struct stat st;
    if (::stat(store_.path(h).c_str(), &st) != 0) continue;
    if (now - st.st_mtime < min_age_s) {
      ++r.blobs_too_young;
      continue;
    }
    if (store_.remove(h)) {
      ++r.blobs_removed;
      r.bytes_freed += std::uint64_t(st.st_blocks) * 512;
    }
  }
  auto [n, bytes] = store_.remove_stale_tmp(min_age_s);
  r.tmp_removed = n;
  r.bytes_freed += bytes;
  return r;
}

}  // namespace atl::host
