#include <atoll/net/tls.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace atl::net {

namespace {
std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}
std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
}  // namespace

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

TlsContext::TlsContext(const TlsOptions& options) {
  for (const auto& p : options.alpn) {
    if (p.empty() || p.size() > 255)
      throw std::invalid_argument("TLS: ALPN protocol '" + p + "' must be 1 to 255 bytes");
    alpn_wire_ += char(p.size());
    alpn_wire_ += p;
  }
  try {
    default_ = make_ctx(options.cert_file, options.key_file);
    for (const auto& h : options.hosts) by_host_[lower(h.name)] = make_ctx(h.cert_file, h.key_file);
  } catch (...) {
    if (default_) SSL_CTX_free(default_);
    for (auto& [_, c] : by_host_) SSL_CTX_free(c);
    throw;
  }
}

TlsContext::~TlsContext() {
  for (auto& [_, c] : by_host_) SSL_CTX_free(c);
  SSL_CTX_free(default_);
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
  if (!name || self->by_host_.empty()) return SSL_TLSEXT_ERR_OK;
  auto it = self->by_host_.find(lower(name));
  if (it != self->by_host_.end()) SSL_set_SSL_CTX(ssl, it->second);
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
