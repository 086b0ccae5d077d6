#include <atoll/net/tls.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace atl::net {

namespace {
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
// The names a certificate serves: its subjectAltName DNS entries, or, with
// none, its subject's CN. Lowercase.
std::vector<std::string> names_of(X509* cert) {
  std::vector<std::string> names;
  if (!cert) return names;
  auto* alt =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (alt) {
    for (int i = 0; i < sk_GENERAL_NAME_num(alt); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(alt, i);
      if (g->type != GEN_DNS) continue;
      const auto* data = ASN1_STRING_get0_data(g->d.dNSName);
      names.push_back(lower(std::string(reinterpret_cast<const char*>(data),
                                        std::size_t(ASN1_STRING_length(g->d.dNSName)))));
    }
    GENERAL_NAMES_free(alt);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0)
      names.push_back(lower(cn));
  }
  return names;
}

}  // namespace

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

std::vector<std::string> check_certificate(const std::string& cert_file,
                                           const std::string& key_file) {
  TlsContext ctx(TlsOptions{.cert_file = cert_file, .key_file = key_file});
  SSL* ssl = ctx.new_session(-1);
  if (!ssl) throw std::runtime_error("TLS: cannot create a session: " + openssl_reason());
  X509* cert = SSL_get_certificate(ssl);
  std::vector<std::string> names = names_of(cert);
  auto when = [](const ASN1_TIME* t) {
    BIO* b = BIO_new(BIO_s_mem());
    ASN1_TIME_print(b, t);
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    std::string out(p, std::size_t(n));
    BIO_free(b);
    return out;
  };
  std::string problem;
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
    problem = "it expired on " + when(X509_get0_notAfter(cert));
  else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
    problem = "it is not valid before " + when(X509_get0_notBefore(cert));
  else if (names.empty())
    problem = "it names no host (no subjectAltName DNS entry, no CN)";
  SSL_free(ssl);
  if (!problem.empty())
    throw std::runtime_error("TLS: certificate file '" + cert_file +
                             "' cannot be used: " + problem);
  return names;
}

SSL_CTX* TlsContext::make_ctx(const std::string& cert, const std::string& key) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw std::runtime_error("TLS: cannot create a context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Partial writes and moving buffers let a suspended write resume with the
  // remainder; releasing buffers returns ~34 KB per idle TLS connection.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    auto why = openssl_reason();
    SSL_CTX_free(ctx);
    throw std::runtime_error("TLS: cannot use certificate file '" + cert + "': " + why);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    auto why = openssl_reason();
    SSL_CTX_free(ctx);
    throw std::runtime_error("TLS: cannot use key file '" + key + "': " + why);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    SSL_CTX_free(ctx);
    throw std::runtime_error("TLS: key file '" + key + "' does not match certificate '" + cert +
                             "'");
  }
  // The macro form casts C-style; call the control function it expands to.
  SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                        reinterpret_cast<void (*)()>(&TlsContext::on_servername));
  SSL_CTX_set_tlsext_servername_arg(ctx, this);
  if (!alpn_wire_.empty()) SSL_CTX_set_alpn_select_cb(ctx, &TlsContext::on_alpn, this);
  return ctx;
}

// The SNI certificates: one context per certificate, found by name. A
// session that switched to one holds its own reference (SSL_set_SSL_CTX), so
// a table may go while its handshakes finish.
struct TlsContext::SniTable {
  std::map<std::string, SSL_CTX*, std::less<>> by_name;
  std::vector<SSL_CTX*> owned;
  SniTable() = default;
  SniTable(const SniTable&) = delete;
  SniTable& operator=(const SniTable&) = delete;
  ~SniTable() {
    for (SSL_CTX* c : owned) SSL_CTX_free(c);
  }
};

TlsContext::TlsContext(const TlsOptions& options) {
  for (const auto& p : options.alpn) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument("TLS: ALPN protocol '" + p + "' must be 1 to 255 bytes");
    alpn_wire_ += char(p.size());
    alpn_wire_ += p;
  }
  default_ = make_ctx(options.cert_file, options.key_file);
  try {
    sni_ = build(options.hosts);
  } catch (...) {
    SSL_CTX_free(default_);
    throw;
  }
}

TlsContext::~TlsContext() {
  sni_.reset();
  SSL_CTX_free(default_);
}

std::shared_ptr<const TlsContext::SniTable> TlsContext::build(
    const std::vector<TlsOptions::Host>& hosts) {
  auto table = std::make_shared<SniTable>();
  for (const auto& h : hosts) {
    SSL_CTX* ctx = make_ctx(h.cert_file, h.key_file);  // throws: `table` frees the others
    table->owned.push_back(ctx);
    if (!h.name.empty()) {
      table->by_name.insert_or_assign(lower(h.name), ctx);
      continue;
    }
    for (const auto& n : names_of(SSL_CTX_get0_certificate(ctx)))
      table->by_name.insert_or_assign(n, ctx);
  }
  return table;
}

void TlsContext::set_hosts(const std::vector<TlsOptions::Host>& hosts) {
  auto table = build(hosts);
  std::lock_guard lock(sni_mutex_);
  sni_.swap(table);  // the old table is freed with `table`, after the lock
}

SSL* TlsContext::new_session(int fd) const {
  SSL* ssl = SSL_new(default_);
  if (!ssl) return nullptr;
  SSL_set_fd(ssl, fd);
  return ssl;
}

int TlsContext::on_servername(SSL* ssl, int*, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  std::shared_ptr<const SniTable> table;
  {
    std::lock_guard lock(self->sni_mutex_);
    table = self->sni_;
  }
  if (table->by_name.empty()) return SSL_TLSEXT_ERR_OK;
  std::string host = lower(name);
  if (!host.empty() && host.back() == '.') host.pop_back();
  auto it = table->by_name.find(host);
  if (it == table->by_name.end()) {
    // A wildcard certificate covers one label: a.example.com, not a.b.example.com.
    if (auto dot = host.find('.'); dot != std::string::npos && dot > 0)
      it = table->by_name.find("*" + host.substr(dot));
  }
  if (it != table->by_name.end()) SSL_set_SSL_CTX(ssl, it->second);
  return SSL_TLSEXT_ERR_OK;
}

int TlsContext::on_alpn(SSL*, const unsigned char** out, unsigned char* outlen,
                        const unsigned char* in, unsigned inlen, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen,
                            reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                            unsigned(self->alpn_wire_.size()), in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no overlap: continue without ALPN
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace atl::net
