#pragma once
// Per-site TLS certificates for SNI, kept in DATA/certs: SITE.pem (the
// chain) and SITE.key (the private key, mode 0600). The admin API installs
// them; every worker reads them when they change and hands them to its TLS
// listener, so a new certificate is served without a restart.
#include <atoll/host/database.hpp>
#include <atoll/net/tls.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace atl::host {

class CertificateStore {
 public:
  explicit CertificateStore(std::string data_dir);

  /// Checks a site's certificate and key (PEM text) and installs them,
  /// replacing any it had. Every name the certificate carries must be one
  /// the site answers to (NAME.BASE, a custom domain, or a host under one
  /// of its wildcards): a site cannot take another's traffic. Returns the
  /// names. Throws std::invalid_argument naming what is wrong.
  std::vector<std::string> install(const SiteInfo& site, std::string_view base_domain,
                                   std::string_view cert_pem, std::string_view key_pem);
  /// Removes a site's certificate; false if it had none.
  bool remove(const std::string& site);
  /// The installed certificates, as SNI hosts (names from the certificates).
  std::vector<net::TlsOptions::Host> hosts() const;
  /// Changes whenever the set changes (0: no directory yet).
  std::int64_t version() const;

 private:
  std::string dir_;
};

/// True if `site` answers to `name` (a certificate name, maybe "*.x").
bool site_answers_to(const SiteInfo& site, std::string_view base_domain, std::string_view name);

}  // namespace atl::host
