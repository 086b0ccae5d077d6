// The admin API: sites, their domains and certificates.
#include "host/admin_internal.hpp"

namespace atl::host::admin_detail {

void site_routes(web::Router& api, std::shared_ptr<AdminState> st) {
  api.get("/api/sites", [st](http::Conn& c) -> Task<> {
    co_await run(c, [&] {
      json list = json::array();
      for (const auto& s : st->host.database().sites())
        list.push_back(site_json(s, st->host.options().base_domain, st->options));
      return Outcome{200, json{{"sites", list}}};
    });
  });

  api.post("/api/sites", [st](http::Conn& c) -> Task<> {
    std::string body = co_await c.read_body(1024 * 1024);
    auto j = parse_json(body);
    if (!j || !j->is_object() || !(*j)["name"].is_string()) {
      co_await error(c, 400, "expected a JSON object {\"name\": \"...\", \"domains\": [...]}");
      co_return;
    }
    std::string name = (*j)["name"];
    c.assign<AuditNote>().site = name.substr(0, 63);
    std::vector<std::string> domains;
    if (j->contains("domains")) {
      if (auto e = read_domains((*j)["domains"], st->host.options().base_domain, domains);
          !e.empty()) {
        co_await error(c, 400, e);
        co_return;
      }
    }
    co_await run(c, [&] {
      auto s = st->host.database().create_site(name, domains);
      st->host.reload();
      return Outcome{201, site_json(s, st->host.options().base_domain, st->options)};
    });
  });

  api.put("/api/sites/:site/domains", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    std::string body = co_await c.read_body(1024 * 1024);
    auto j = parse_json(body);
    std::vector<std::string> domains;
    std::string e = !j || !j->is_object() || !j->contains("domains")
                        ? "expected a JSON object {\"domains\": [\"example.com\", ...]}"
                        : read_domains((*j)["domains"], st->host.options().base_domain, domains);
    if (!e.empty()) {
      co_await error(c, 400, e);
      co_return;
    }
    co_await run(c, [&] {
      st->host.database().set_domains(name, domains);
      st->host.reload();
      auto s = st->host.database().site(name);
      if (!s) throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      return Outcome{200, site_json(*s, st->host.options().base_domain, st->options)};
    });
  });

  api.put("/api/sites/:site/certificate", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    std::string body = co_await c.read_body(1024 * 1024);
    auto j = parse_json(body);
    if (!j || !j->is_object() || !(*j)["cert"].is_string() || !(*j)["key"].is_string()) {
      co_await error(c, 400,
                     "expected a JSON object {\"cert\": \"PEM chain\", \"key\": \"PEM key\"}");
      co_return;
    }
    co_await run(c, [&] {
      auto site = st->host.database().site(name);
      if (!site) throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      if (st->options.data_dir.empty())
        throw DbError(DbError::Kind::not_found, "this server keeps no certificates");
      CertificateStore certs(st->options.data_dir);
      auto names = certs.install(*site, st->host.options().base_domain,
                                 (*j)["cert"].get<std::string>(), (*j)["key"].get<std::string>());
      log::info("admin: certificate for site {} installed ({})", name, fmt::join(names, ", "));
      st->host.reload();  // every worker picks it up for SNI
      return Outcome{200, json{{"site", name}, {"names", names}}};
    });
  });

  api.del("/api/sites/:site/certificate", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    co_await run(c, [&] {
      if (st->options.data_dir.empty() || !CertificateStore(st->options.data_dir).remove(name))
        throw DbError(DbError::Kind::not_found, "site '" + name + "' has no certificate");
      st->host.reload();
      return Outcome{204, {}};
    });
  });

  api.get("/api/sites/:site", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    co_await run(c, [&] {
      auto s = st->host.database().site(name);
      if (!s) throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      return Outcome{200, site_json(*s, st->host.options().base_domain, st->options)};
    });
  });

  api.del("/api/sites/:site", [st](http::Conn& c) -> Task<> {
    std::string name(c.param("site"));
    co_await run(c, [&] {
      if (!st->host.database().delete_site(name))
        throw DbError(DbError::Kind::not_found, "no site named '" + name + "'");
      if (!st->options.data_dir.empty()) CertificateStore(st->options.data_dir).remove(name);
      st->host.reload();
      return Outcome{204, {}};
    });
  });
}

}  // namespace atl::host::admin_detail
