// `atoll serve`: a supervising master and its workers, serving the sites of
// a data directory (host mode) or one directory (quick mode, --root).
//
// The master prepares the data directory (token, demo sites), opens every
// listening socket, and supervises the workers (src/runtime/supervisor.cpp).
// Each worker opens the database itself (SQLite handles are not to cross a
// fork), serves the sites on its own SO_REUSEPORT listeners, serves the admin
// API on its own admin listener, and drains on SIGTERM.
//
// Default: one worker with a loop per core, still supervised (a crash is
// repaired in milliseconds: 1-10 ms measured by test_supervision.py). Both
// layouts give every loop its own SO_REUSEPORT listener and its own resolver
// cache, so the hot path is the same. Several workers share state that the
// master maps before it forks (SharedState): /metrics counts the requests of
// every worker, whichever answers the scrape, and a deploy through the admin
// API wakes every worker and is answered when all of them serve it.
// `--workers N` isolates crashes further and is how a box holds more than one
// process's 20,000 descriptors.
#include "serve_command.hpp"

#include <atoll/host/admin.hpp>
#include <atoll/host/certificates.hpp>
#include <atoll/host/deploy_bell.hpp>
#include <atoll/host/host.hpp>
#include <atoll/host/publish.hpp>
#include <atoll/http/server.hpp>
#include <atoll/runtime/log.hpp>
#include <atoll/runtime/pid_file.hpp>
#include <atoll/runtime/signals.hpp>
#include <atoll/runtime/supervisor.hpp>
#include <atoll/web/static_files.hpp>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

namespace atl::app {

namespace {

void publish_demo_sites(const ServeSettings& s) {
  auto db = host::open_sqlite(s.data + "/atoll.db");
  std::string demo = find_demo_sites(s);
  if (demo.empty()) return;
  host::ContentStore store(s.data);
  host::Publisher pub(store, *db);
  DIR* d = ::opendir(demo.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::string dir = demo + "/" + name;
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        !host::site_name_error(name).empty())
      continue;
    auto r = pub.publish_dir(name, dir);
    std::printf("published demo site %s (%zu files, deploy %lld)\n", name.c_str(), r.files,
                static_cast<long long>(r.deploy));
  }
}

// The certificates a worker's TLS listener picks by SNI: the config's and
// the sites' own, installed through the admin API into DATA/certs. Refreshed
// from the host's watcher thread (and the admin API's), so it locks.
class SniCertificates {
 public:
  explicit SniCertificates(const ServeSettings& s) : certs_(s.data) {
    for (const auto& c : s.certificates) configured_.push_back({"", c.cert, c.key});
  }
  void attach(net::TlsContext* tls) {
    std::lock_guard lock(mutex_);
    tls_ = tls;
    seen_ = -1;
    if (tls_) refresh_locked();
  }
  void refresh() {
    std::lock_guard lock(mutex_);
    if (tls_) refresh_locked();
  }

 private:
  void refresh_locked() {
    std::int64_t v = certs_.version();
    if (v == seen_) return;
    seen_ = v;
    auto hosts = configured_;
    auto sites = certs_.hosts();
    hosts.insert(hosts.end(), sites.begin(), sites.end());
    try {
      tls_->set_hosts(hosts);
      if (!sites.empty()) log::info("tls: {} site certificate(s) for SNI", sites.size());
    } catch (const std::exception& e) {
      log::error("tls: keeping the previous certificates: {}", e.what());
    }
  }

  std::mutex mutex_;
  host::CertificateStore certs_;
  std::vector<net::TlsOptions::Host> configured_;
  net::TlsContext* tls_ = nullptr;  // guarded by mutex_
  std::int64_t seen_ = -1;          // guarded by mutex_
};

// One worker: serve until SIGTERM, then drain.
int run_worker(const ServeSettings& s, net::ServerOptions options, std::vector<int> public_fds,
               int admin_fd, const std::string& token, int ready_fd,
               std::shared_ptr<host::SharedState> shared) {
  try {
    runtime::block_termination_signals();
    std::shared_ptr<host::Database> db = host::open_sqlite(s.data + "/atoll.db");
    auto store = std::make_shared<host::ContentStore>(s.data);
    // SNI: the config's [[certificates]] and the sites' own (DATA/certs),
    // read again whenever the latter change.
    SniCertificates sni(s);
    host::Host site_host(
        db, store,
        {.base_domain = s.base_domain, .shared = shared, .on_poll = [&sni] { sni.refresh(); }});
    site_host.start();
    options.inherited_listeners = std::move(public_fds);
    net::Server server(options, http::make_handler(web::pipeline(logging(s), site_host.app())));
    server.start();
    sni.attach(server.tls());
    struct DetachSni {
      SniCertificates& sni;
      ~DetachSni() { sni.attach(nullptr); }
    } detach_sni{sni};
    site_host.set_server_info([&server] { return server.info(); });
    // Whatever ends this scope (an admin listener that fails to start, too),
    // the watcher stops asking a server that is about to go.
    struct ForgetServer {
      host::Host& h;
      ~ForgetServer() { h.set_server_info(nullptr); }
    } forget{site_host};
    std::atomic<bool> draining{false};
    std::unique_ptr<net::Server> admin;
    if (admin_fd >= 0) {
      net::ServerOptions admin_options;
      admin_options.loops = 1;  // the admin API is not the hot path
      admin_options.inherited_listeners = {admin_fd};
      if (!s.admin_tls_cert.empty())
        admin_options.tls = tls_options(s.admin_tls_cert, s.admin_tls_key);
      host::AdminOptions ao{.token = token, .data_dir = s.data};
      ao.max_upload = s.max_upload;
      ao.site_tls = options.tls.has_value();
      for (int fd : options.inherited_listeners)
        if (auto ep = net::Endpoint::local_of(fd); !ep.is_unix()) {
          ao.site_port = ep.port();
          break;
        }
      ao.server_info = [&server] { return server.info(); };
      ao.draining = [&draining] { return draining.load(); };
      admin = std::make_unique<net::Server>(admin_options,
                                            http::make_handler(host::admin_api(site_host, ao)));
      admin->start();
    }
    [[maybe_unused]] auto n = ::write(ready_fd, "R", 1);
    ::close(ready_fd);
    int sig = runtime::wait_for_signal();
    log::info("worker: signal {}: draining", sig);
    draining = true;
    site_host.set_server_info(nullptr);  // (and again by `forget`: harmless)
    server.stop();
    if (admin) admin->stop();
    site_host.stop();
    return 0;
  } catch (const std::exception& e) {
    log::error("worker: {}", e.what());
    return 1;
  }
}

// One quick-mode worker: the directory through static_files, until SIGTERM.
int run_quick_worker(const ServeSettings& s, net::ServerOptions options,
                     std::vector<int> public_fds, int ready_fd) {
  try {
    runtime::block_termination_signals();
    web::StaticOptions files{
        .root = s.root, .precompressed = s.precompressed, .cache_control = s.cache_control};
    options.inherited_listeners = std::move(public_fds);
    net::Server server(options,
                       http::make_handler(web::pipeline(logging(s), web::static_files(files))));
    server.start();
    [[maybe_unused]] auto n = ::write(ready_fd, "R", 1);
    ::close(ready_fd);
    int sig = runtime::wait_for_signal();
    log::info("worker: signal {}: draining", sig);
    server.stop();
    return 0;
  } catch (const std::exception& e) {
    log::error("worker: {}", e.what());
    return 1;
  }
}

}  // namespace

int run_master(const ServeSettings& initial, net::ServerOptions options,
               std::function<bool(ServeSettings&)> reload, std::vector<std::string> argv) {
  // From here on the master is up: a SIGTERM waits for supervise() to drain.
  runtime::block_master_signals();
  ServeSettings s = initial;
  // Quick mode (--root): the same master, listeners and workers, serving one
  // directory: no data directory, database or admin API.
  const bool quick = !s.root.empty();
  if (!quick && ::mkdir(s.data.c_str(), 0750) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "atoll serve: cannot create data directory '%s': %s\n", s.data.c_str(),
                 std::strerror(errno));
    return 1;
  }
  // Before any listener opens: one master per data directory. Held from
  // here, so the file is in place when the banner says the server is ready.
  // (An upgrade's new master runs beside the old one and takes the file over
  // once its workers are ready: supervise() does that.)
  struct HeldPidFile {  // removed again if we return before supervising
    std::string path;
    int fd = -1;
    ~HeldPidFile() {
      if (fd < 0) return;
      ::unlink(path.c_str());
      ::close(fd);
    }
  } pid_file{!s.pid_file.empty() ? s.pid_file : quick ? std::string() : s.data + "/atoll.pid"};
  try {
    if (!pid_file.path.empty() && !std::getenv("ATOLL_UPGRADE_PARENT"))
      pid_file.fd = runtime::hold_pid_file(pid_file.path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atoll serve: %s\n", e.what());
    return 1;
  }
  // A new data directory is the one moment demo sites are published:
  // deleting them sticks, and a production directory never grows them.
  std::string token;
  if (!quick) {
    bool new_data = ::access((s.data + "/atoll.db").c_str(), F_OK) != 0;
    bool created = false;
    token = host::load_or_create_token(s.data, created);
    // The token itself is not printed: stdout is also the access log stream.
    if (created)
      std::printf(
          "admin token created in %s/admin.token (mode 0600); `atoll token --data %s` shows it\n",
          s.data.c_str(), s.data.c_str());
    if (new_data && s.demo)
      publish_demo_sites(s);  // before any fork: its SQLite handle is closed here
  }

  unsigned workers = s.workers ? s.workers : 1;
  if (!s.loops) options.loops = workers > 1 ? 1 : 0;

  // Listeners: per worker, one SO_REUSEPORT socket per public address and one
  // for the admin API, in that order. An upgrade inherits them in that order.
  // Any mix of addresses and ports; a Unix socket has one listener that every
  // worker shares (AF_UNIX has no SO_REUSEPORT), which stays behind when the
  // master exits (an upgraded master still serves it) and is cleared as stale
  // at the next start.
  std::vector<net::Endpoint> public_eps;
  try {
    for (const auto& text : s.listen) public_eps.push_back(net::Endpoint::parse(text));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atoll serve: --listen %s\n", e.what());
    return 2;
  }
  if (public_eps.empty()) {
    std::fprintf(stderr, "atoll serve: nothing to listen on (give --listen ADDR:PORT)\n");
    return 2;
  }
  bool with_admin = !quick && s.admin_listen != "off";
  net::Endpoint admin_ep;
  if (with_admin) admin_ep = net::Endpoint::parse(s.admin_listen);
  std::size_t per_worker = public_eps.size() + (with_admin ? 1 : 0);
  std::vector<int> fds = runtime::upgrade_listeners();
  // systemd socket activation: its sockets are the public listeners, shared by
  // every worker (the kernel wakes whichever accepts first); the admin API
  // still gets a listener per worker.
  std::vector<int> activated = fds.empty() ? runtime::systemd_listeners() : std::vector<int>{};
  if (!activated.empty()) {
    try {
      for (unsigned w = 0; w < workers; ++w) {
        for (int fd : activated) fds.push_back(fd);
        if (with_admin) fds.push_back(net::open_listener(admin_ep, 128, true));
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "atoll serve: %s\n", e.what());
      return 1;
    }
    public_eps.assign(activated.size(), net::Endpoint{});
    per_worker = activated.size() + (with_admin ? 1 : 0);
    log::info("serve: using {} socket(s) from systemd socket activation", activated.size());
  } else if (!fds.empty()) {
    if (fds.size() != workers * per_worker) {
      std::fprintf(stderr,
                   "atoll serve: inherited %zu listening sockets but these settings need %zu (%u "
                   "workers × %zu)\n",
                   fds.size(), workers * per_worker, workers, per_worker);
      return 2;
    }
  } else {
    try {
      std::vector<int> shared_unix(public_eps.size(), -1);
      for (unsigned w = 0; w < workers; ++w) {
        for (std::size_t i = 0; i < public_eps.size(); ++i) {
          auto& ep = public_eps[i];
          if (ep.is_unix()) {
            if (shared_unix[i] < 0) shared_unix[i] = net::open_listener(ep, options.backlog, false);
            fds.push_back(shared_unix[i]);
            continue;
          }
          int fd = net::open_listener(ep, options.backlog, true);
          if (ep.port() == 0)
            ep = net::Endpoint::local_of(fd);  // the first picked a port: the rest join it
          fds.push_back(fd);
        }
        if (with_admin) {
          int fd = net::open_listener(admin_ep, 128, true);
          if (admin_ep.port() == 0) admin_ep = net::Endpoint::local_of(fd);
          fds.push_back(fd);
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "atoll serve: %s\n", e.what());
      return 1;
    }
  }
  // Report what we listen on (from the sockets themselves: inherited ones too).
  for (std::size_t i = 0; i < per_worker; ++i) {
    auto ep = net::Endpoint::local_of(fds[i]);
    if (with_admin && i == per_worker - 1)
      std::printf("admin API on http%s://%s\n", s.admin_tls_cert.empty() ? "" : "s",
                  ep.to_string().c_str());
    else if (quick)
      std::printf("listening on %s%s (serving %s)\n",
                  ep.is_unix()  ? ""
                  : options.tls ? "https://"
                                : "http://",
                  ep.to_string().c_str(), s.root.c_str());
    else if (ep.is_unix())
      std::printf("serving sites on %s (each site by its Host header)\n", ep.to_string().c_str());
    else
      std::printf(
          "serving sites on http%s://%s (each site at %s)\n", options.tls ? "s" : "",
          ep.to_string().c_str(),
          host::site_url("NAME", s.base_domain, options.tls.has_value(), ep.port()).c_str());
  }
  std::printf("supervising %u worker(s)\n", workers);
  std::fflush(stdout);

  // (Half the shared slots: during a reload, old and new workers overlap.)
  if (workers > host::SharedState::max_workers / 2) {
    std::fprintf(stderr, "atoll serve: --workers is at most %zu\n",
                 host::SharedState::max_workers / 2);
    return 2;
  }
  // Mapped before the first fork: every worker, and every replacement of a
  // crashed one, shares these counters and deploy wake-ups.
  std::shared_ptr<host::SharedState> shared = quick ? nullptr : host::SharedState::create();

  runtime::SupervisorOptions sup;
  sup.workers = workers;
  sup.inherited_fds = fds;
  sup.argv = std::move(argv);
  sup.pid_file = pid_file.path;
  sup.pid_fd = std::exchange(pid_file.fd, -1);  // supervise() owns it now
  sup.stop_timeout_ms = options.drain_timeout_ms + 5000;
  sup.run_worker = [&](unsigned index, unsigned, int ready_fd) {
    std::vector<int> mine(fds.begin() + long(index * per_worker),
                          fds.begin() + long(index * per_worker + public_eps.size()));
    if (quick) return run_quick_worker(s, options, mine, ready_fd);
    int admin_fd = with_admin ? fds[index * per_worker + per_worker - 1] : -1;
    return run_worker(s, options, mine, admin_fd, token, ready_fd, shared);
  };
  sup.reload = [&] {
    if (!reload) return true;
    ServeSettings fresh = s;
    if (!reload(fresh)) return false;
    if (fresh.root.empty() == quick) {
      log::error("reload: --root cannot be added or removed by a reload (restart instead)");
      return false;
    }
    if (fresh.listen != s.listen || fresh.admin_listen != s.admin_listen || fresh.data != s.data ||
        (fresh.workers && fresh.workers != workers))
      log::warn(
          "reload: listen addresses, data directory and worker count change only with a restart or "
          "an upgrade");
    fresh.listen = s.listen;
    fresh.admin_listen = s.admin_listen;
    fresh.data = s.data;
    s = fresh;
    if (quick)
      log::info("reload: settings re-read (root {}, access log {})", s.root, s.access_log);
    else
      log::info("reload: settings re-read (base domain {}, access log {})", s.base_domain,
                s.access_log);
    return true;
  };
  if (quick) return runtime::supervise(sup);
  // `atoll publish --data` and `rollback --data` ring this at commit: every
  // worker loads at once rather than at its next poll.
  std::unique_ptr<host::DeployBell> bell;
  try {
    bell = std::make_unique<host::DeployBell>(s.data);
    sup.wake_fd = bell->fd();
    sup.on_wake = [&] {
      if (bell->drain()) shared->announce_deploy();
    };
  } catch (const std::exception& e) {
    log::warn("serve: {}; deploys from the command line are seen at the next poll", e.what());
  }
  return runtime::supervise(sup);
}

}  // namespace atl::app
