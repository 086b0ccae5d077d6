#include "http_client.hpp"

#include <atoll/net/tls.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace atl::app {

namespace {

struct Url {
  bool tls = false;
  std::string host;      // without brackets
  std::string hostport;  // for the Host header
  std::string port;
  std::string prefix;  // the URL's own path, without a trailing '/'
};

Url parse_url(const std::string& url) {
  Url u;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    throw std::runtime_error("'" + url + "': the server URL must start with http:// or https://");
  }
  std::size_t slash = rest.find('/');
  u.hostport = rest.substr(0, slash);
  if (slash != std::string::npos) u.prefix = rest.substr(slash);
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  if (u.hostport.empty()) throw std::runtime_error("'" + url + "' names no host");
  u.host = u.hostport;
  u.port = u.tls ? "443" : "80";
  if (auto colon = u.hostport.rfind(':');
      colon != std::string::npos && u.hostport.find(']', colon) == std::string::npos) {
    u.host = u.hostport.substr(0, colon);
    u.port = u.hostport.substr(colon + 1);
  }
  if (u.host.size() > 2 && u.host.front() == '[') u.host = u.host.substr(1, u.host.size() - 2);
  return u;
}

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool is_loopback(const std::string& host) {
  if (host == "localhost" || host.ends_with(".localhost") || host == "::1") return true;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

// One connection: a socket, and TLS over it for https://.
class Connection {
 public:
  Connection(const Url& u, const std::string& ca_file, const std::string& url) : url_(url) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &res) != 0 || !res)
      throw std::runtime_error("cannot resolve '" + u.host + "' in " + url);
    int err = 0;
    for (auto* a = res; a; a = a->ai_next) {
      fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd_ >= 0 && ::connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
      err = errno;
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
    }
    freeaddrinfo(res);
    if (fd_ < 0)
      throw std::runtime_error("cannot connect to " + u.hostport + " (" + url +
                               "): " + std::strerror(err));
    try {
      if (u.tls) start_tls(u, ca_file);
    } catch (...) {
      release();  // a constructor that throws runs no destructor
      throw;
    }
  }
  ~Connection() { release(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send_all(const std::string& data) {
    for (std::size_t off = 0; off < data.size();) {
      std::size_t n = 0;
      if (ssl_) {
        if (SSL_write_ex(ssl_, data.data() + off, data.size() - off, &n) != 1) n = 0;
      } else {
        ssize_t put = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        n = put > 0 ? std::size_t(put) : 0;
      }
      if (n == 0) throw std::runtime_error("connection to " + url_ + " failed while sending");
      off += n;
    }
  }

  std::string read_all() {
    std::string out;
    char buf[65536];
    for (;;) {
      std::size_t n = 0;
      if (ssl_) {
        if (SSL_read_ex(ssl_, buf, sizeof buf, &n) != 1) break;  // close_notify, EOF or error
      } else {
        ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
        if (got <= 0) break;
        n = std::size_t(got);
      }
      out.append(buf, n);
    }
    return out;
  }

 private:
  void release() noexcept {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    fd_ = -1;
  }
  void start_tls(const Url& u, const std::string& ca_file) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) throw std::runtime_error("TLS: cannot create a context: " + net::openssl_reason());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1)
        throw std::runtime_error("cannot use CA file '" + ca_file + "': " + net::openssl_reason());
    } else if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
      throw std::runtime_error("cannot load the system's CA certificates: " +
                               net::openssl_reason());
    }
    ssl_ = SSL_new(ctx_);
    if (!ssl_) throw std::runtime_error("TLS: cannot create a session: " + net::openssl_reason());
    SSL_set_fd(ssl_, fd_);
    if (is_ip(u.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), u.host.c_str());
    } else {
      // SSL_set_tlsext_host_name, without the macro's C-style cast.
      SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(u.host.c_str()));
      SSL_set1_host(ssl_, u.host.c_str());
    }
    if (SSL_connect(ssl_) != 1) {
      long v = SSL_get_verify_result(ssl_);
      std::string why = v != X509_V_OK ? X509_verify_cert_error_string(v) : net::openssl_reason();
      throw std::runtime_error(
          "TLS with " + u.hostport + " failed: " + why +
          (v != X509_V_OK
               ? (ca_file.empty()
                      ? " (for a private CA or a self-signed certificate, pass --ca FILE)"
                      : " (checked against --ca " + ca_file + ")")
               : ""));
    }
  }

  std::string url_;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

}  // namespace

HttpResponse http_request(const HttpTarget& target, const std::string& method,
                          const std::string& path, const std::string& content_type,
                          const std::string& body) {
  Url u = parse_url(target.base_url);
  std::string url = (u.tls ? "https://" : "http://") + u.hostport + u.prefix + path;
  if (!u.tls && !target.token.empty() && !is_loopback(u.host))
    throw std::runtime_error("refusing to send the admin token in clear text to " + u.host +
                             ": use https:// (atoll serve --admin-tls-cert/--admin-tls-key), or "
                             "an SSH tunnel to the admin API's loopback port");
  Connection conn(u, target.ca_file, url);
  std::string req = method + " " + u.prefix + path + " HTTP/1.1\r\nHost: " + u.hostport +
                    "\r\nConnection: close\r\n";
  if (!target.token.empty()) req += "Authorization: Bearer " + target.token + "\r\n";
  if (!content_type.empty()) req += "Content-Type: " + content_type + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  conn.send_all(req);
  std::string resp = conn.read_all();
  HttpResponse r;
  if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12)
    throw std::runtime_error("no HTTP response from " + url +
                             (resp.empty() ? "" : " (is it an https:// server?)"));
  r.status = std::atoi(resp.c_str() + 9);
  auto head_end = resp.find("\r\n\r\n");
  std::string head = resp.substr(0, head_end);
  std::string payload = head_end == std::string::npos ? "" : resp.substr(head_end + 4);
  std::string lower = head;
  for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("transfer-encoding: chunked") != std::string::npos) {
    std::string decoded;
    std::size_t p = 0;
    while (p < payload.size()) {
      std::size_t eol = payload.find("\r\n", p);
      if (eol == std::string::npos) break;
      std::size_t len = std::strtoul(payload.substr(p, eol - p).c_str(), nullptr, 16);
      if (len == 0) break;
      decoded += payload.substr(eol + 2, len);
      p = eol + 2 + len + 2;
    }
    payload = decoded;
  }
  r.body = payload;
  return r;
}

}  // namespace atl::app
