#pragma once
// Publishing: files → blobs in the content store + one atomic deploy.
#include <atoll/host/database.hpp>
#include <atoll/host/store.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atl::host {

/// The per-site settings a deploy carries, from `_atoll.toml` at the root of
/// the published directory:
///
///   not_found = "404.html"       # served with status 404 for unknown paths
///   spa = "index.html"           # or: served (200) for unknown paths
///   clean_urls = false           # serve /about.html as is (default: redirect to /about)
///   [[redirects]]
///   from = "/old"                # exact path, or a prefix ending in "*"
///   to = "/new"
///   status = 301                 # 301, 302, 307 or 308
///   [[headers]]
///   path = "/assets/"            # a path prefix
///   name = "X-Frame-Options"
///   value = "DENY"
///   include_hidden = [".nojekyll"]  # hidden names to deploy (see below)
struct SiteConfig {
  std::string not_found;
  std::string spa;
  std::vector<std::string> include_hidden;
  /// `about.html` answers at /about, `dir/index.html` at /dir/, and the
  /// other spellings redirect there; false serves each as it is.
  bool clean_urls = true;
  struct Redirect {
    std::string from, to;
    int status = 301;
  };
  std::vector<Redirect> redirects;
  struct HeaderRule {
    std::string path, name, value;
  };
  std::vector<HeaderRule> headers;

  std::string to_json() const;
  static SiteConfig from_json(std::string_view json);
};

/// The name of the config file, which is read and not served.
inline constexpr std::string_view site_config_file = "_atoll.toml";

/// Parses `_atoll.toml`; throws std::invalid_argument("FILE:LINE:COL: what").
SiteConfig parse_site_config(std::string_view toml, const std::string& file_name);

struct PublishResult {
  std::int64_t deploy = 0;
  std::size_t files = 0;
  std::size_t new_blobs = 0;
  std::uint64_t bytes = 0;
  /// What the hidden-name rule left out, sorted: "a/.env" for a file,
  /// ".git/" for a directory (its contents are not listed one by one).
  std::vector<std::string> skipped;
};

/// Hidden names (a path segment that starts with '.') are not deployed and
/// not served: that is where secrets live (.env, .git/, .htpasswd). Two
/// exceptions: a directory named `.well-known` (RFC 8615), and the names a
/// site lists in `_atoll.toml`'s `include_hidden` (matched against each
/// segment, file or directory). The same rule applies to a directory, an
/// archive and a manifest.
bool hidden_name_allowed(std::string_view name, bool is_directory,
                         const std::vector<std::string>& include_hidden);

/// The part of `path` the hidden-name rule refuses ("a/.git/" when a
/// directory refuses it, "a/.env" for a file), or "" if it is deployed.
std::string hidden_refusal(std::string_view path, const std::vector<std::string>& include_hidden);

/// A file to publish, held in memory (from an uploaded archive).
struct PublishFile {
  std::string path;  // relative, '/'-separated, no "..", no leading '/'
  std::string bytes;
};

/// The files `atoll publish DIR` takes: every regular file under `dir`,
/// relative and '/'-separated, sorted, without the hidden names the rule
/// refuses (appended to `skipped` when given). A symlink is refused
/// (std::invalid_argument naming it), as is anything that cannot be listed.
std::vector<std::string> publishable_files(const std::string& dir,
                                           const std::vector<std::string>& include_hidden = {},
                                           std::vector<std::string>* skipped = nullptr);

/// Reads `dir/_atoll.toml` if there is one (throws FILE:LINE:COL errors).
SiteConfig read_site_config(const std::string& dir);

/// Throws std::invalid_argument if `path` could escape or confuse the site:
/// empty, absolute, "..", ".", empty segments, backslashes, control bytes.
void validate_publish_path(std::string_view path);

struct StoreUsage {
  std::size_t deploys = 0;  // kept, over all sites
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;       // the blobs' sizes
  std::uint64_t disk_bytes = 0;  // the blocks they take
  std::size_t unreferenced = 0;  // blobs no kept deploy refers to
  std::uint64_t unreferenced_disk_bytes = 0;
};

struct GcResult {
  std::size_t deploys_removed = 0;
  std::size_t blobs_removed = 0;
  std::size_t tmp_removed = 0;      // leftovers of interrupted uploads
  std::uint64_t bytes_freed = 0;    // disk blocks
  std::size_t blobs_too_young = 0;  // unreferenced but kept: younger than min_age_s
};

class Publisher {
 public:
  Publisher(ContentStore& store, Database& db) : store_(store), db_(db) {}

  /// Every regular file under `dir` (hidden names skipped as above; a
  /// symlink is an error naming it) becomes the new live deploy of `site`.
  PublishResult publish_dir(const std::string& site, const std::string& dir);
  /// The same for files held in memory.
  PublishResult publish_files(const std::string& site, const std::vector<PublishFile>& files);
  /// A deploy of blobs already in the store: `manifest` maps paths to hashes.
  /// Throws DbError(invalid) listing a missing blob.
  PublishResult publish_manifest(const std::string& site,
                                 const std::vector<std::pair<std::string, std::string>>& manifest,
                                 const std::string& config_toml);

  /// What the store holds, and how much of it no kept deploy refers to.
  StoreUsage usage();

  /// Keeps the newest `keep` deploys of every site (and each live one), and
  /// removes blobs that no deploy refers to and upload leftovers in
  /// DATA/tmp, when older than `min_age_s` (so the blobs of a remote
  /// publish still uploading are not collected before its deploy).
  GcResult collect_garbage(std::size_t keep, std::int64_t min_age_s = 600);

  /// A file record for `bytes` stored at `path`, with precompressed variants
  /// for text types (made here, stored in the store).
  FileRecord record(const std::string& path, std::string_view bytes,
                    std::size_t* new_blobs = nullptr);

 private:
  // While a publish runs: the site's live deploy, whose variants record()
  // reuses for unchanged files.
  struct ReuseLive {
    Publisher& p;
    ReuseLive(Publisher& pub, const std::string& site) : p(pub) {
      auto s = p.db_.site(site);
      p.reuse_from_ = s ? s->live_deploy : std::nullopt;
    }
    ~ReuseLive() { p.reuse_from_.reset(); }
  };

  ContentStore& store_;
  Database& db_;
  std::optional<std::int64_t> reuse_from_;
};

}  // namespace atl::host
