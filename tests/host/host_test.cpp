// Host: sites by host name, deploys going live through reload() and the
// watcher, and the two never undoing each other. A real SQLite file and
// content store behind a Database decorator that can hold the watcher still
// at a chosen point, so an interleaving that is rare in production happens
// every time here.
#include <atoll/host/host.hpp>
#include <atoll/host/publish.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "host/temp_dir.hpp"
#include "web/middleware_support.hpp"

using namespace atl;
using namespace atl::test;

namespace {

// Forwards to a real database. Once armed, the first sites() call (from the
// watcher: the test itself never calls it) fetches its answer and then waits
// before returning it; after that, generation() can hold the watcher at its
// next poll.
class HoldingDb final : public host::Database {
 public:
  explicit HoldingDb(std::unique_ptr<host::Database> inner) : inner_(std::move(inner)) {}

  std::int64_t generation() override {
    {
      std::unique_lock lock(m_);
      if (hold_generation_ && std::this_thread::get_id() != not_held_) {
        held_in_generation_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return !hold_generation_; });
      }
    }
    return inner_->generation();
  }
  std::vector<host::SiteInfo> sites() override {
    auto answer = inner_->sites();
    std::unique_lock lock(m_);
    if (hold_sites_) {
      hold_sites_ = false;
      held_in_sites_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
    }
    return answer;
  }

  void hold_next_sites() {
    std::lock_guard lock(m_);
    hold_sites_ = true;
  }
  bool wait_held_in_sites() {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_in_sites_; });
  }
  /// Lets the held sites() return; from now on generation() holds every
  /// caller but `not_held`.
  void release_and_hold_generation(std::thread::id not_held) {
    std::lock_guard lock(m_);
    released_ = true;
    hold_generation_ = true;
    not_held_ = not_held;
    cv_.notify_all();
  }
  bool wait_held_in_generation() {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_in_generation_; });
  }
  void release_all() {
    std::lock_guard lock(m_);
    released_ = true;
    hold_sites_ = hold_generation_ = false;
    cv_.notify_all();
  }

  // The rest forwards as is.
  host::SiteInfo create_site(const std::string& n, const std::vector<std::string>& d) override {
    return inner_->create_site(n, d);
  }
  void set_domains(const std::string& n, const std::vector<std::string>& d) override {
    inner_->set_domains(n, d);
  }
  bool delete_site(const std::string& n) override { return inner_->delete_site(n); }
  std::optional<host::SiteInfo> site(const std::string& n) override { return inner_->site(n); }
  std::int64_t create_deploy(const std::string& s, const std::vector<host::FileRecord>& f,
                             const std::string& c) override {
    return inner_->create_deploy(s, f, c);
  }
  std::vector<host::DeployInfo> deploys(const std::string& s) override {
    return inner_->deploys(s);
  }
  std::int64_t rollback(const std::string& s, std::optional<std::int64_t> to) override {
    return inner_->rollback(s, to);
  }
  std::optional<host::FileRecord> resolve(std::int64_t d, const std::string& p) override {
    return inner_->resolve(d, p);
  }
  std::vector<std::string> changed_paths(std::int64_t a, std::int64_t b) override {
    return inner_->changed_paths(a, b);
  }
  std::size_t prune(const std::string& s, std::size_t k) override { return inner_->prune(s, k); }
  std::vector<std::string> referenced_hashes() override { return inner_->referenced_hashes(); }
  void add_audit(const host::AuditEntry& e) override { inner_->add_audit(e); }
  std::vector<host::AuditEntry> audit(std::size_t n, const std::string& s) override {
    return inner_->audit(n, s);
  }

 private:
  std::unique_ptr<host::Database> inner_;
  std::mutex m_;
  std::condition_variable cv_;
  std::thread::id not_held_;
  bool hold_sites_ = false, held_in_sites_ = false, released_ = false;
  bool hold_generation_ = false, held_in_generation_ = false;
};

HttpReply get(std::uint16_t port, const std::string& host, const std::string& path) {
  return http_exchange(
      port, "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
}

class HostTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::shared_ptr<host::ContentStore> store = std::make_shared<host::ContentStore>(dir.path());
  std::shared_ptr<HoldingDb> db = std::make_shared<HoldingDb>(host::open_sqlite(dir / "atoll.db"));
  // Publishes through its own connection, as `atoll publish` would.
  std::unique_ptr<host::Database> writer = host::open_sqlite(dir / "atoll.db");

  void publish(const std::string& site, const std::string& index) {
    host::Publisher(*store, *writer).publish_files(site, {{"index.html", index}});
  }
};

}  // namespace

TEST_F(HostTest, ServesEachSiteByItsHostName) {
  publish("one", "site one");
  publish("two", "site two");
  host::Host h(db, store, {.poll_ms = 20});
  h.start();
  HttpTestServer server(h.app());
  EXPECT_EQ(get(server.port(), "one.localhost", "/").body, "site one");
  EXPECT_EQ(get(server.port(), "TWO.localhost:8080", "/").body, "site two");
  EXPECT_EQ(get(server.port(), "three.localhost", "/").status, 404);
  h.stop();
}

TEST_F(HostTest, ReloadMakesADeployLiveAtOnceEvenForACachedMiss) {
  publish("s", "v1");
  host::Host h(db, store, {.poll_ms = 60'000, .negative_ttl_ms = 60'000});
  h.start();
  HttpTestServer server(h.app());
  EXPECT_EQ(get(server.port(), "s.localhost", "/new").status, 404);  // now a cached miss
  host::Publisher(*store, *writer).publish_files("s", {{"index.html", "v2"}, {"new.html", "new"}});
  h.reload();
  EXPECT_EQ(get(server.port(), "s.localhost", "/").body, "v2");
  EXPECT_EQ(get(server.port(), "s.localhost", "/new").body, "new");
  h.stop();
}

TEST_F(HostTest, TheWatcherNoticesAnotherProcessesDeploy) {
  publish("s", "v1");
  host::Host h(db, store, {.poll_ms = 20});
  h.start();
  HttpTestServer server(h.app());
  EXPECT_EQ(get(server.port(), "s.localhost", "/").body, "v1");
  publish("s", "v2");
  EXPECT_TRUE(
      wait_until([&] { return get(server.port(), "s.localhost", "/").body == "v2"; }, 5000));
  h.stop();
}

// The watcher reads the site table (v2 live), and before it installs it, a
// deploy (v3) is made and reload() installs that. The watcher's older table
// must not replace the newer one: the site would go back to v2, after the
// admin API had already answered that v3 was live.
TEST_F(HostTest, AWatcherLoadThatStartedEarlierDoesNotUndoAReload) {
  publish("s", "v1");
  host::Host h(db, store, {.poll_ms = 20});
  h.start();
  std::atomic<bool> reloaded{false};
  std::thread reloader;
  struct Cleanup {  // before h goes: nothing may stay held, no thread unjoined
    HoldingDb& db;
    std::thread& t;
    ~Cleanup() {
      db.release_all();
      if (t.joinable()) t.join();
    }
  } cleanup{*db, reloader};
  HttpTestServer server(h.app());
  EXPECT_EQ(get(server.port(), "s.localhost", "/").body, "v1");

  db->hold_next_sites();
  publish("s", "v2");
  ASSERT_TRUE(db->wait_held_in_sites()) << "the watcher did not notice v2";
  publish("s", "v3");
  reloader = std::thread([&] {
    h.reload();
    reloaded = true;
  });
  // Give reload() the chance to finish while the watcher holds its v2 table.
  // (If loads are serialised, reload() waits for the watcher instead and this
  // times out, which is the correct outcome.)
  wait_until([&] { return reloaded.load(); }, 500);
  db->release_and_hold_generation(reloader.get_id());
  reloader.join();
  // The watcher's v2 load is over once it polls again; hold it there, so its
  // next load cannot hide the damage.
  ASSERT_TRUE(db->wait_held_in_generation());
  EXPECT_EQ(get(server.port(), "s.localhost", "/").body, "v3");
  db->release_all();
  h.stop();
}
