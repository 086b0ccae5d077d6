// atoll: the command line.
//
//   atoll serve [--config FILE] [--listen ADDR:PORT] [--admin-listen ADDR:PORT] [--data DIR] [--base-domain D]
//   atoll serve --root DIR                      serve one directory (no database)
//   atoll publish DIR --site NAME               deploy a directory (local, or --server URL --token T)
//   atoll rollback --site NAME [--to DEPLOY]
//   atoll sites
//   atoll deploys --site NAME
#include "host_commands.hpp"
#include "serve_command.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"atoll: a web server for many sites on one small box"};
  app.require_subcommand(1);

  atl::app::ServeSettings serve;
  auto* serve_cmd = app.add_subcommand("serve", "Run the site host (or, with --root, serve one directory)");
  atl::app::add_serve_options(*serve_cmd, serve);

  atl::app::PublishSettings publish;
  auto* publish_cmd = app.add_subcommand("publish", "Deploy a directory as a site's new live version");
  publish_cmd->add_option("dir", publish.dir, "The directory to publish")->required()->check(CLI::ExistingDirectory);
  publish_cmd->add_option("--site", publish.site, "Site name (a DNS label: a-z, 0-9, '-')")->required();
  atl::app::add_target_options(*publish_cmd, publish.target);

  atl::app::RollbackSettings rollback;
  auto* rollback_cmd = app.add_subcommand("rollback", "Make an earlier deploy live again");
  rollback_cmd->add_option("--site", rollback.site, "Site name")->required();
  rollback_cmd->add_option("--to", rollback.to, "Deploy id (default: the one before the live one)");
  atl::app::add_target_options(*rollback_cmd, rollback.target);

  atl::app::ListSettings sites;
  auto* sites_cmd = app.add_subcommand("sites", "List the sites");
  atl::app::add_target_options(*sites_cmd, sites.target);

  atl::app::ListSettings deploys;
  auto* deploys_cmd = app.add_subcommand("deploys", "List a site's deploys, newest first");
  deploys_cmd->add_option("--site", deploys.site, "Site name")->required();
  atl::app::add_target_options(*deploys_cmd, deploys.target);

  CLI11_PARSE(app, argc, argv);
  if (serve_cmd->parsed()) {
    try {
      atl::app::apply_config_file(*serve_cmd, serve);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "atoll serve: %s\n", e.what());
      return 2;
    }
    return atl::app::run_serve(serve);
  }
  if (publish_cmd->parsed()) return atl::app::run_publish(publish);
  if (rollback_cmd->parsed()) return atl::app::run_rollback(rollback);
  if (sites_cmd->parsed()) return atl::app::run_sites(sites);
  if (deploys_cmd->parsed()) return atl::app::run_deploys(deploys);
  return 0;
}
