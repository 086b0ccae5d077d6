#pragma once
// Database: sites, deploys and path → file maps, behind a small interface so
// that PostgreSQL can join SQLite later. Every method is blocking: call it
// from offload() or a tool, never on an event loop.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace atl::host {

/// A database error; `kind` says how a client should see it.
class DbError : public std::runtime_error {
 public:
  enum class Kind { not_found, conflict, invalid, unavailable, no_space };
  DbError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

/// One file of a deploy: its path (no leading '/'), content hash and type,
/// and the hashes of its precompressed variants when it has them.
struct FileRecord {
  std::string path;
  std::string hash;
  std::uint64_t size = 0;
  std::string mime;
  std::string br, zst, gz;  // empty: no such variant
  std::uint64_t br_size = 0, zst_size = 0, gz_size = 0;
};

struct SiteInfo {
  std::int64_t id = 0;
  std::string name;
  std::vector<std::string> domains;  // custom domains, normalised (normalise_domain)
  std::optional<std::int64_t> live_deploy;
  std::string config_json;  // the live deploy's site config ("{}" if none)
  std::int64_t created_at = 0;
};

struct DeployInfo {
  std::int64_t id = 0;
  std::string site;
  std::int64_t created_at = 0;
  std::int64_t files = 0;
  std::uint64_t bytes = 0;
  bool live = false;
};

/// One line of the audit trail: an admin write or a refused token.
struct AuditEntry {
  std::int64_t id = 0;
  std::int64_t at = 0;  // Unix seconds
  std::string peer;     // the client's address
  std::string action;   // "site.create", "deploy", "auth.refused", ...
  std::string site;     // "" when none
  int status = 0;       // the HTTP status answered
  std::string detail;   // the error, or what was made ("deploy 12")
};

/// Site names are DNS labels: 1-63 of a-z, 0-9 and '-', not starting or
/// ending with '-'. Returns an error message naming the rule, or "".
std::string site_name_error(std::string_view name);

/// The canonical form of a custom domain: lowercase, without the trailing
/// dot, an international name in punycode (IDNA2008 with UTS #46 mapping:
/// "Bücher.Example." becomes "xn--bcher-kva.example"). `*.example.com` is a
/// wildcard: every host under example.com, at any depth, but not
/// example.com itself; a more specific name or wildcard wins. Throws
/// std::invalid_argument naming the rule broken: LDH labels of 1-63 bytes,
/// at most 253 in all, at least two labels, not an IP address, and nothing
/// at or under `base_domain` (where NAME.BASE already names each site).
std::string normalise_domain(std::string_view domain, std::string_view base_domain = {});

/// True if `name` is a host under `parent` (a.example.com and a.b.example.com
/// are under example.com; example.com and badexample.com are not).
bool is_under(std::string_view name, std::string_view parent);

class Database {
 public:
  virtual ~Database() = default;
  /// Bumped by every change; a server polls it to notice deploys.
  virtual std::int64_t generation() = 0;
  virtual SiteInfo create_site(const std::string& name,
                               const std::vector<std::string>& domains) = 0;
  virtual void set_domains(const std::string& name, const std::vector<std::string>& domains) = 0;
  virtual bool delete_site(const std::string& name) = 0;
  virtual std::vector<SiteInfo> sites() = 0;
  virtual std::optional<SiteInfo> site(const std::string& name) = 0;
  /// Records a deploy and makes it live, atomically: readers see the old
  /// deploy or the new one, never a mix. Creates the site if it is missing.
  virtual std::int64_t create_deploy(const std::string& site, const std::vector<FileRecord>& files,
                                     const std::string& config_json) = 0;
  virtual std::vector<DeployInfo> deploys(const std::string& site) = 0;
  /// Makes `to` (default: the deploy before the live one) live; returns its id.
  virtual std::int64_t rollback(const std::string& site, std::optional<std::int64_t> to) = 0;
  virtual std::optional<FileRecord> resolve(std::int64_t deploy, const std::string& path) = 0;
  /// Paths whose content differs between two deploys (added, removed, changed).
  virtual std::vector<std::string> changed_paths(std::int64_t from, std::int64_t to) = 0;
  /// Deletes all but the newest `keep` deploys of a site (never the live one).
  virtual std::size_t prune(const std::string& site, std::size_t keep) = 0;
  /// Every hash any kept deploy refers to (for blob garbage collection).
  virtual std::vector<std::string> referenced_hashes() = 0;
  /// Appends to the audit trail (the newest 100,000 entries are kept).
  virtual void add_audit(const AuditEntry& entry) = 0;
  /// The newest `limit` entries, newest first; only `site`'s if not empty.
  virtual std::vector<AuditEntry> audit(std::size_t limit, const std::string& site = "") = 0;
};

/// SQLite in WAL mode at `path`; several processes may share the file.
/// Throws DbError(unavailable) naming the file when it cannot be opened.
std::unique_ptr<Database> open_sqlite(const std::string& path);

}  // namespace atl::host
