// atoll: the command line.
//
//   atoll --version
//   atoll sites create|delete|domains NAME [DOMAIN...]   atoll purge --server URL   atoll token
//   atoll store   atoll gc [--keep N] [--grace SECONDS]
//   atoll serve [--config FILE] [--listen ADDR:PORT] [--admin-listen ADDR:PORT] [--data DIR]
//   [--base-domain D] atoll serve --root DIR                      serve one directory (no database)
//   atoll publish DIR --site NAME               deploy a directory (local, or --server URL --token
//   T) atoll rollback --site NAME [--to DEPLOY] atoll sites atoll deploys --site NAME atoll reload
//   | atoll upgrade                signal the running master (SIGHUP / SIGUSR2)
#include "host_commands.hpp"
#include "serve_command.hpp"

#include <atoll/runtime/pid_file.hpp>

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  CLI::App app{"atoll: a web server for many sites on one small box"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("atoll ") + ATOLL_VERSION);

  atl::app::ServeSettings serve;
  auto* serve_cmd =
      app.add_subcommand("serve", "Run the site host (or, with --root, serve one directory)");
  atl::app::add_serve_options(*serve_cmd, serve);

  atl::app::PublishSettings publish;
  auto* publish_cmd =
      app.add_subcommand("publish", "Deploy a directory as a site's new live version");
  publish_cmd->add_option("dir", publish.dir, "The directory to publish")
      ->required()
      ->check(CLI::ExistingDirectory);
  publish_cmd->add_option("--site", publish.site, "Site name (a DNS label: a-z, 0-9, '-')")
      ->required();
  atl::app::add_target_options(*publish_cmd, publish.target);

  atl::app::RollbackSettings rollback;
  auto* rollback_cmd = app.add_subcommand("rollback", "Make an earlier deploy live again");
  rollback_cmd->add_option("--site", rollback.site, "Site name")->required();
  rollback_cmd->add_option("--to", rollback.to, "Deploy id (default: the one before the live one)");
  atl::app::add_target_options(*rollback_cmd, rollback.target);

  atl::app::ListSettings sites;
  auto* sites_cmd = app.add_subcommand("sites", "List the sites (or: sites create|delete|domains)");
  atl::app::add_target_options(*sites_cmd, sites.target);
  sites_cmd->require_subcommand(0, 1);
  atl::app::SiteCommand site_cmd;
  auto site_subcommand = [&](const char* name, const char* help, bool with_domains) {
    auto* c = sites_cmd->add_subcommand(name, help);
    c->add_option("site", site_cmd.site, "Site name (a DNS label: a-z, 0-9, '-')")->required();
    if (with_domains)
      c->add_option("domains", site_cmd.domains,
                    "Custom domains (example.com, *.example.com); none: clears them");
    c->add_option("--base-domain", site_cmd.base_domain,
                  "The server's base domain (a local command refuses domains under it)")
        ->capture_default_str();
    atl::app::add_target_options(*c, site_cmd.target);
    c->callback([&site_cmd, name] { site_cmd.action = name; });
    return c;
  };
  site_subcommand("create", "Create a site, with custom domains", true);
  site_subcommand("delete", "Delete a site and its deploys", false);
  site_subcommand("domains", "Replace a site's custom domains", true);

  auto* purge_cmd = app.add_subcommand("purge", "Empty a running server's resolver caches");
  atl::app::add_target_options(*purge_cmd, site_cmd.target);

  atl::app::HostTarget store_target;
  auto* store_cmd = app.add_subcommand("store", "Show the content store's size and what is unused");
  atl::app::add_target_options(*store_cmd, store_target);

  atl::app::GcSettings gc;
  auto* gc_cmd = app.add_subcommand(
      "gc", "Remove old deploys and unreferenced blobs now (they also go after each deploy)");
  gc_cmd->add_option("--keep", gc.keep, "Deploys to keep per site (the live one always stays)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  gc_cmd
      ->add_option("--grace", gc.grace_s,
                   "Seconds an unreferenced blob is kept after its upload (a remote publish "
                   "uploads blobs before its deploy)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  atl::app::add_target_options(*gc_cmd, gc.target);

  atl::app::HostTarget token_target;
  auto* token_cmd = app.add_subcommand("token", "Print the admin token (from DATA/admin.token)");
  token_cmd->add_option("--data", token_target.data, "Data directory")->capture_default_str();

  atl::app::ListSettings deploys;
  auto* deploys_cmd = app.add_subcommand("deploys", "List a site's deploys, newest first");
  deploys_cmd->add_option("--site", deploys.site, "Site name")->required();
  atl::app::add_target_options(*deploys_cmd, deploys.target);

  std::string signal_data = "atoll-data";
  std::string signal_pid_file;  // "" = DATA/atoll.pid
  auto* reload_cmd = app.add_subcommand(
      "reload", "Re-read the configuration: new workers start, old ones drain (SIGHUP)");
  reload_cmd
      ->add_option("--data", signal_data, "Data directory of the running server (holds atoll.pid)")
      ->capture_default_str();
  reload_cmd->add_option("--pid-file", signal_pid_file,
                         "The server's --pid-file (quick mode has none unless given)");
  auto* upgrade_cmd = app.add_subcommand(
      "upgrade", "Start the binary again with the sockets inherited; the old one drains (SIGUSR2)");
  upgrade_cmd
      ->add_option("--data", signal_data, "Data directory of the running server (holds atoll.pid)")
      ->capture_default_str();
  upgrade_cmd->add_option("--pid-file", signal_pid_file,
                          "The server's --pid-file (quick mode has none unless given)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" that exit 0; a usage error is 2,
    // whatever CLI11's own number for it.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (serve_cmd->parsed()) {
    const atl::app::ServeSettings from_flags = serve;  // what SIGHUP re-reads the config file over
    try {
      atl::app::apply_config_file(*serve_cmd, serve);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "atoll serve: %s\n", e.what());
      return 2;
    }
    auto reload = [serve_cmd, from_flags](atl::app::ServeSettings& out) {
      atl::app::ServeSettings fresh = from_flags;
      try {
        atl::app::apply_config_file(*serve_cmd, fresh);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "atoll serve: reload: %s\n", e.what());
        return false;
      }
      out = fresh;
      return true;
    };
    std::vector<std::string> args;
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    args.push_back(n > 0 ? std::string(exe, std::size_t(n)) : std::string(argv[0]));
    for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
    return atl::app::run_serve(serve, reload, args);
  }
  if (reload_cmd->parsed() || upgrade_cmd->parsed()) {
    std::string pid_file = signal_pid_file.empty() ? signal_data + "/atoll.pid" : signal_pid_file;
    // Only the process that holds the pid file's lock is signalled: a stale
    // file's pid may have been reused by an unrelated process.
    std::string why;
    pid_t pid = atl::runtime::locked_pid(pid_file, why);
    if (pid == 0) {
      std::fprintf(stderr, "atoll: no running server found: %s\n", why.c_str());
      return 1;
    }
    int sig = reload_cmd->parsed() ? SIGHUP : SIGUSR2;
    if (::kill(pid, sig) != 0) {
      std::fprintf(stderr, "atoll: cannot signal pid %d (from %s): %s\n", pid, pid_file.c_str(),
                   std::strerror(errno));
      return 1;
    }
    std::printf("sent %s to the master (pid %d)\n",
                reload_cmd->parsed() ? "SIGHUP (reload)" : "SIGUSR2 (upgrade)", pid);
    return 0;
  }
  if (publish_cmd->parsed()) return atl::app::run_publish(publish);
  if (rollback_cmd->parsed()) return atl::app::run_rollback(rollback);
  if (!site_cmd.action.empty()) return atl::app::run_site_command(site_cmd);
  if (purge_cmd->parsed()) {
    site_cmd.action = "purge";
    return atl::app::run_site_command(site_cmd);
  }
  if (token_cmd->parsed()) return atl::app::run_token(token_target);
  if (store_cmd->parsed()) return atl::app::run_store(store_target);
  if (gc_cmd->parsed()) return atl::app::run_gc(gc);
  if (sites_cmd->parsed()) return atl::app::run_sites(sites);
  if (deploys_cmd->parsed()) return atl::app::run_deploys(deploys);
  return 0;
}
