#include <atoll/host/database.hpp>

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>

#include <ctime>
#include <mutex>
#include <stdexcept>

namespace atl::host {

std::string site_name_error(std::string_view n) {
  auto rule =
      std::string("site name '") + std::string(n.substr(0, 80)) +
      "' is invalid: use 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'";
  if (n.empty() || n.size() > 63 || n.front() == '-' || n.back() == '-') return rule;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return rule;
  return "";
}

namespace {

constexpr const char* schema = R"(
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', 0);
CREATE TABLE IF NOT EXISTS sites(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  domains TEXT NOT NULL DEFAULT '',
  live_deploy INTEGER,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deploys(
  id INTEGER PRIMARY KEY,
  site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  config TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS files(
  deploy_id INTEGER NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  mime TEXT NOT NULL,
  br TEXT NOT NULL DEFAULT '', br_size INTEGER NOT NULL DEFAULT 0,
  zst TEXT NOT NULL DEFAULT '', zst_size INTEGER NOT NULL DEFAULT 0,
  gz TEXT NOT NULL DEFAULT '', gz_size INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (deploy_id, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deploys_by_site ON deploys(site_id, id);
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  peer TEXT NOT NULL,
  action TEXT NOT NULL,
  site TEXT NOT NULL DEFAULT '',
  status INTEGER NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
)";

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    if (comma > pos) out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw DbError(DbError::Kind::unavailable, std::string("database: ") + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  /// True while there is a row.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3* db = sqlite3_db_handle(stmt_);
    int code = sqlite3_extended_errcode(db);
    std::string msg = std::string("database: ") + sqlite3_errmsg(db);
    if ((code & 0xff) == SQLITE_CONSTRAINT) throw DbError(DbError::Kind::conflict, msg);
    if ((code & 0xff) == SQLITE_FULL) throw DbError(DbError::Kind::no_space, msg);
    throw DbError(DbError::Kind::unavailable, msg);
  }
  std::int64_t integer(int col) { return sqlite3_column_int64(stmt_, col); }
  bool null(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  sqlite3_stmt* raw() const noexcept { return stmt_; }
  std::string text(int col) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, std::size_t(sqlite3_column_bytes(stmt_, col))) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw DbError(DbError::Kind::unavailable, "database '" + path + "' cannot be opened: " + msg);
    }
    // A writer in another process (atoll publish) holds the lock briefly:
    // wait for it rather than fail.
    sqlite3_busy_timeout(db_, 5000);
    try {
      exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
      exec(schema);
    } catch (const DbError& e) {
      // sqlite3_open_v2 opens lazily: a file that is not a database, or one
      // locked by another writer, fails here. Say which file ("file is not
      // a database" alone does not); the destructor will not run.
      sqlite3_close(db_);
      std::string why = e.what();
      if (why.starts_with("database: ")) why.erase(0, 10);
      throw DbError(e.kind(), "database '" + path + "' cannot be used: " + why);
    }
  }
  ~SqliteDatabase() override { sqlite3_close(db_); }

  std::int64_t generation() override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Statement s(db_, "SELECT value FROM meta WHERE key = 'generation'");
    return s.step() ? s.integer(0) : 0;
  }

  SiteInfo create_site(const std::string& name, const std::vector<std::string>& domains) override {
    if (auto e = site_name_error(name); !e.empty()) throw DbError(DbError::Kind::invalid, e);
    std::vector<std::string> canonical = canonical_domains(domains);
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Tx tx(*this);
    check_domains_free(name, canonical);
    Statement s(db_, "INSERT INTO sites(name, domains, created_at) VALUES (?, ?, ?)");
    s.bind(1, name).bind(2, join(canonical)).bind(3, std::int64_t(std::time(nullptr)));
    try {
      s.step();
    } catch (const DbError& e) {
      if (e.kind() == DbError::Kind::conflict)
        throw DbError(DbError::Kind::conflict, "site '" + name + "' already exists");
      throw;
    }
    bump();
    tx.commit();
    return *site_locked(name);
  }

  void set_domains(const std::string& name, const std::vector<std::string>& domains) override {
    std::vector<std::string> canonical = canonical_domains(domains);
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Tx tx(*this);
    check_domains_free(name, canonical);
    Statement s(db_, "UPDATE sites SET domains = ? WHERE name = ?");
    s.bind(1, join(canonical)).bind(2, name).step();
    if (sqlite3_changes(db_) == 0)
      throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
    bump();
    tx.commit();
  }

  bool delete_site(const std::string& name) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Tx tx(*this);
    Statement s(db_, "DELETE FROM sites WHERE name = ?");
    s.bind(1, name).step();
    bool deleted = sqlite3_changes(db_) > 0;
    if (deleted) bump();
    tx.commit();
    return deleted;
  }

  std::vector<SiteInfo> sites() override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    std::vector<SiteInfo> out;
    Statement s(
        db_,
        "SELECT s.id, s.name, s.domains, s.live_deploy, s.created_at, COALESCE(d.config, '{}') "
        "FROM sites s LEFT JOIN deploys d ON d.id = s.live_deploy ORDER BY s.name");
    while (s.step()) out.push_back(row(s));
    return out;
  }

  std::optional<SiteInfo> site(const std::string& name) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    return site_locked(name);
  }

  std::int64_t create_deploy(const std::string& site, const std::vector<FileRecord>& files,
                             const std::string& config_json) override {
    if (auto e = site_name_error(site); !e.empty()) throw DbError(DbError::Kind::invalid, e);
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Tx tx(*this);
    auto info = site_locked(site);
    if (!info) {
      Statement s(db_, "INSERT INTO sites(name, domains, created_at) VALUES (?, '', ?)");
      s.bind(1, site).bind(2, std::int64_t(std::time(nullptr))).step();
      info = site_locked(site);
    }
    std::uint64_t bytes = 0;
    for (const auto& f : files) bytes += f.size;
    Statement d(
        db_,
        "INSERT INTO deploys(site_id, created_at, files, bytes, config) VALUES (?, ?, ?, ?, ?)");
    d.bind(1, info->id)
        .bind(2, std::int64_t(std::time(nullptr)))
        .bind(3, std::int64_t(files.size()))
        .bind(4, std::int64_t(bytes))
        .bind(5, config_json.empty() ? std::string("{}") : config_json)
        .step();
    std::int64_t id = sqlite3_last_insert_rowid(db_);
    Statement f(db_,
                "INSERT INTO files(deploy_id, path, hash, size, mime, br, br_size, zst, zst_size, "
                "gz, gz_size) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const auto& r : files) {
      sqlite3_reset(f.raw());
      f.bind(1, id)
          .bind(2, r.path)
          .bind(3, r.hash)
          .bind(4, std::int64_t(r.size))
          .bind(5, r.mime)
          .bind(6, r.br)
          .bind(7, std::int64_t(r.br_size))
          .bind(8, r.zst)
          .bind(9, std::int64_t(r.zst_size))
          .bind(10, r.gz)
          .bind(11, std::int64_t(r.gz_size));
      try {
        f.step();
      } catch (const DbError& e) {
        if (e.kind() == DbError::Kind::conflict)
          throw DbError(DbError::Kind::invalid,
                        "path '" + r.path + "' appears twice in the deploy");
        throw;
      }
    }
    Statement live(db_, "UPDATE sites SET live_deploy = ? WHERE id = ?");
    live.bind(1, id).bind(2, info->id).step();
    bump();
    tx.commit();
    return id;
  }

  std::vector<DeployInfo> deploys(const std::string& site) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    auto info = site_locked(site);
    if (!info) throw DbError(DbError::Kind::not_found, "no site named '" + site + "'");
    std::vector<DeployInfo> out;
    Statement s(
        db_, "SELECT id, created_at, files, bytes FROM deploys WHERE site_id = ? ORDER BY id DESC");
    s.bind(1, info->id);
    while (s.step())
      out.push_back({s.integer(0), site, s.integer(1), s.integer(2), std::uint64_t(s.integer(3)),
                     info->live_deploy && *info->live_deploy == s.integer(0)});
    return out;
  }

  std::int64_t rollback(const std::string& site, std::optional<std::int64_t> to) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Tx tx(*this);
    auto info = site_locked(site);
    if (!info) throw DbError(DbError::Kind::not_found, "no site named '" + site + "'");
    std::int64_t target = 0;
    if (to) {
      Statement s(db_, "SELECT id FROM deploys WHERE id = ? AND site_id = ?");
      s.bind(1, *to).bind(2, info->id);
      if (!s.step())
        throw DbError(DbError::Kind::not_found,
                      "site '" + site + "' has no deploy " + std::to_string(*to));
      target = *to;
    } else {
      Statement s(db_,
                  "SELECT id FROM deploys WHERE site_id = ? AND id < ? ORDER BY id DESC LIMIT 1");
      s.bind(1, info->id).bind(2, info->live_deploy.value_or(0));
      if (!s.step())
        throw DbError(DbError::Kind::not_found,
                      "site '" + site + "' has no earlier deploy to roll back to");
      target = s.integer(0);
    }
    Statement u(db_, "UPDATE sites SET live_deploy = ? WHERE id = ?");
    u.bind(1, target).bind(2, info->id).step();
    bump();
    tx.commit();
    return target;
  }

  std::optional<FileRecord> resolve(std::int64_t deploy, const std::string& path) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Statement s(db_,
                "SELECT path, hash, size, mime, br, br_size, zst, zst_size, gz, gz_size FROM files "
                "WHERE deploy_id = ? AND path = ?");
    s.bind(1, deploy).bind(2, path);
    if (!s.step()) return std::nullopt;
    FileRecord r;
    r.path = s.text(0);
    r.hash = s.text(1);
    r.size = std::uint64_t(s.integer(2));
    r.mime = s.text(3);
    r.br = s.text(4);
    r.br_size = std::uint64_t(s.integer(5));
    r.zst = s.text(6);
    r.zst_size = std::uint64_t(s.integer(7));
    r.gz = s.text(8);
    r.gz_size = std::uint64_t(s.integer(9));
    return r;
  }

  std::vector<std::string> changed_paths(std::int64_t from, std::int64_t to) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    std::vector<std::string> out;
    Statement s(
        db_,
        "SELECT a.path FROM files a LEFT JOIN files b ON b.deploy_id = ?2 AND b.path = a.path "
        "WHERE a.deploy_id = ?1 AND (b.hash IS NULL OR b.hash != a.hash) "
        "UNION SELECT b.path FROM files b LEFT JOIN files a ON a.deploy_id = ?1 AND a.path = "
        "b.path "
        "WHERE b.deploy_id = ?2 AND a.hash IS NULL");
    s.bind(1, from).bind(2, to);
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  std::size_t prune(const std::string& site, std::size_t keep) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Tx tx(*this);
    auto info = site_locked(site);
    if (!info) return 0;
    Statement s(db_,
                "DELETE FROM deploys WHERE site_id = ?1 AND id != COALESCE(?2, -1) AND id NOT IN "
                "(SELECT id FROM deploys WHERE site_id = ?1 ORDER BY id DESC LIMIT ?3)");
    s.bind(1, info->id).bind(3, std::int64_t(keep));
    if (info->live_deploy) s.bind(2, *info->live_deploy);
    s.step();
    std::size_t n = std::size_t(sqlite3_changes(db_));
    if (n) bump();
    tx.commit();
    return n;
  }

  void add_audit(const AuditEntry& e) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Tx tx(*this);
    Statement s(
        db_, "INSERT INTO audit(at, peer, action, site, status, detail) VALUES (?, ?, ?, ?, ?, ?)");
    s.bind(1, e.at ? e.at : std::int64_t(std::time(nullptr)))
        .bind(2, e.peer)
        .bind(3, e.action)
        .bind(4, e.site)
        .bind(5, std::int64_t(e.status))
        .bind(6, e.detail.substr(0, 1000))
        .step();
    // The trail is bounded: the newest 100,000 entries (a few tens of MB).
    Statement trim(db_, "DELETE FROM audit WHERE id <= last_insert_rowid() - 100000");
    trim.step();
    tx.commit();
  }

  std::vector<AuditEntry> audit(std::size_t limit, const std::string& site) override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    Statement s(db_,
                "SELECT id, at, peer, action, site, status, detail FROM audit "
                "WHERE ? = '' OR site = ? ORDER BY id DESC LIMIT ?");
    s.bind(1, site).bind(2, site).bind(3, std::int64_t(limit));
    std::vector<AuditEntry> out;
    while (s.step())
      out.push_back({s.integer(0), s.integer(1), s.text(2), s.text(3), s.text(4), int(s.integer(5)),
                     s.text(6)});
    return out;
  }

  std::vector<std::string> referenced_hashes() override {
    std::lock_guard<std::recursive_mutex> lock(mutex_);
    std::vector<std::string> out;
    Statement s(
        db_,
        "SELECT hash FROM files UNION SELECT br FROM files WHERE br != '' "
        "UNION SELECT zst FROM files WHERE zst != '' UNION SELECT gz FROM files WHERE gz != ''");
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

 private:
  friend class Statement;
  // Every domain in its canonical form, each once, in the order given.
  static std::vector<std::string> canonical_domains(const std::vector<std::string>& domains) {
    std::vector<std::string> out;
    for (const auto& d : domains) {
      std::string c;
      try {
        c = normalise_domain(d);
      } catch (const std::invalid_argument& e) {
        throw DbError(DbError::Kind::invalid, e.what());
      }
      if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(std::move(c));
    }
    return out;
  }

  // A domain answers for one site only (inside the caller's transaction, so
  // two writers cannot both claim one).
  void check_domains_free(const std::string& name, const std::vector<std::string>& domains) {
    if (domains.empty()) return;
    Statement s(db_, "SELECT name, domains FROM sites WHERE name != ? AND domains != ''");
    s.bind(1, name);
    while (s.step())
      for (const auto& taken : split(s.text(1)))
        if (std::find(domains.begin(), domains.end(), taken) != domains.end())
          throw DbError(DbError::Kind::conflict,
                        "domain '" + taken + "' already belongs to site '" + s.text(0) + "'");
  }

  struct Tx {
    explicit Tx(SqliteDatabase& d) : db(d) { db.exec("BEGIN IMMEDIATE"); }
    ~Tx() {
      if (!done) sqlite3_exec(db.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
      db.exec("COMMIT");
      done = true;
    }
    SqliteDatabase& db;
    bool done = false;
  };

  void exec(const char* sql) {
    char* err = nullptr;
    if (int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw DbError(
          (rc & 0xff) == SQLITE_FULL ? DbError::Kind::no_space : DbError::Kind::unavailable,
          "database: " + msg);
    }
  }
  void bump() { exec("UPDATE meta SET value = value + 1 WHERE key = 'generation'"); }

  static SiteInfo row(Statement& s) {
    SiteInfo i;
    i.id = s.integer(0);
    i.name = s.text(1);
    i.domains = split(s.text(2));
    if (!s.null(3)) i.live_deploy = s.integer(3);
    i.created_at = s.integer(4);
    i.config_json = s.text(5);
    return i;
  }

  std::optional<SiteInfo> site_locked(const std::string& name) {
    Statement s(
        db_,
        "SELECT s.id, s.name, s.domains, s.live_deploy, s.created_at, COALESCE(d.config, '{}') "
        "FROM sites s LEFT JOIN deploys d ON d.id = s.live_deploy WHERE s.name = ?");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return row(s);
  }

  sqlite3* db_ = nullptr;
  std::recursive_mutex mutex_;
};

}  // namespace

std::unique_ptr<Database> open_sqlite(const std::string& path) {
  // SQLite takes an empty file for an empty database and would quietly make
  // a new one in it: a file cut short (a failed copy, a full disk) would
  // come up as a host with no sites. Refuse it like any other corrupt file.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
    throw DbError(DbError::Kind::unavailable,
                  "database '" + path +
                      "' cannot be used: it is empty (0 bytes), not an atoll database; move it "
                      "away to start with a new one");
  return std::make_unique<SqliteDatabase>(path);
}

}  // namespace atl::host
