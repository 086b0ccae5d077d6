#include <atoll/host/certificates.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace atl::host {

namespace {

void write_file(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
  bool ok = ::write(fd, data.data(), data.size()) == ssize_t(data.size()) && ::fsync(fd) == 0;
  ::fchmod(fd, mode);
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write '" + path + "'");
}

}  // namespace

bool site_answers_to(const SiteInfo& site, std::string_view base_domain, std::string_view name) {
  if (name == site.name + "." + std::string(base_domain)) return true;
  for (const auto& d : site.domains) {
    if (name == d) return true;
    // A host under one of the site's wildcards is the site's, and so is a
    // narrower wildcard: *.eu.example.com under *.example.com.
    if (d.starts_with("*.")) {
      std::string_view parent = std::string_view(d).substr(2);
      std::string_view n = name.starts_with("*.") ? name.substr(2) : name;
      if (is_under(n, parent) || (name.starts_with("*.") && n == parent)) return true;
    }
  }
  return false;
}

CertificateStore::CertificateStore(std::string data_dir) : dir_(std::move(data_dir) + "/certs") {}

std::vector<std::string> CertificateStore::install(const SiteInfo& site,
                                                   std::string_view base_domain,
                                                   std::string_view cert_pem,
                                                   std::string_view key_pem) {
  if (cert_pem.find("-----BEGIN CERTIFICATE-----") == std::string_view::npos)
    throw std::invalid_argument(
        "'cert' must be a PEM certificate chain (-----BEGIN CERTIFICATE-----)");
  if (key_pem.find("PRIVATE KEY-----") == std::string_view::npos)
    throw std::invalid_argument("'key' must be a PEM private key (-----BEGIN PRIVATE KEY-----)");
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    throw std::runtime_error("cannot create '" + dir_ + "': " + std::strerror(errno));
  std::string tmp_cert = dir_ + "/.new-" + site.name + ".pem";
  std::string tmp_key = dir_ + "/.new-" + site.name + ".key";
  struct Cleanup {
    std::string a, b;
    ~Cleanup() {
      ::unlink(a.c_str());
      ::unlink(b.c_str());
    }
  } cleanup{tmp_cert, tmp_key};
  write_file(tmp_cert, cert_pem, 0644);
  write_file(tmp_key, key_pem, 0600);
  std::vector<std::string> names;
  try {
    names = net::check_certificate(tmp_cert, tmp_key);
  } catch (const std::runtime_error& e) {
    // The temporary file names mean nothing to the caller.
    std::string why = e.what();
    for (const auto& [tmp, what] : {std::pair{tmp_cert, "the certificate"}, {tmp_key, "the key"}})
      for (auto at = why.find(tmp); at != std::string::npos; at = why.find(tmp))
        why.replace(at, tmp.size(), what);
    throw std::invalid_argument(why);
  }
  for (const auto& n : names)
    if (!site_answers_to(site, base_domain, n))
      throw std::invalid_argument("the certificate names '" + n + "', which site '" + site.name +
                                  "' does not answer to (add the domain to the site first)");
  // The key first: a reader that sees the new chain finds its key beside it.
  if (std::rename(tmp_key.c_str(), (dir_ + "/" + site.name + ".key").c_str()) != 0 ||
      std::rename(tmp_cert.c_str(), (dir_ + "/" + site.name + ".pem").c_str()) != 0)
    throw std::runtime_error("cannot install the certificate in '" + dir_ +
                             "': " + std::strerror(errno));
  return names;
}

bool CertificateStore::remove(const std::string& site) {
  bool had = ::unlink((dir_ + "/" + site + ".pem").c_str()) == 0;
  ::unlink((dir_ + "/" + site + ".key").c_str());
  return had;
}

std::vector<net::TlsOptions::Host> CertificateStore::hosts() const {
  std::vector<net::TlsOptions::Host> out;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return out;
  std::vector<std::string> sites;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n.size() > 4 && n.ends_with(".pem") && !n.starts_with('.'))
      sites.emplace_back(n.substr(0, n.size() - 4));
  }
  ::closedir(d);
  std::sort(sites.begin(), sites.end());
  for (const auto& s : sites) {
    std::string key = dir_ + "/" + s + ".key";
    if (::access(key.c_str(), R_OK) == 0) out.push_back({"", dir_ + "/" + s + ".pem", key});
  }
  return out;
}

std::int64_t CertificateStore::version() const {
  // Every file's name, inode, size and time: an install renames new files
  // in, so any change shows (the directory's own time is too coarse for two
  // installs within a few milliseconds).
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint64_t v) { h = (h ^ v) * 1099511628211ull; };
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return 0;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    struct stat st;
    if (::stat((dir_ + "/" + n).c_str(), &st) != 0) continue;
    for (char c : n) mix(std::uint64_t(static_cast<unsigned char>(c)));
    mix(std::uint64_t(st.st_ino));
    mix(std::uint64_t(st.st_size));
    mix(std::uint64_t(st.st_mtim.tv_sec) * 1'000'000'000ull + std::uint64_t(st.st_mtim.tv_nsec));
  }
  return std::int64_t(h & 0x7fffffffffffffffull);
}

}  // namespace atl::host
