#pragma once
// A blocking TLS client for tests (OpenSSL, no atoll code), with ALPN and SNI
// under the test's control and every read and write bounded by a timeout.
#include "support/test_support.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <string>
#include <vector>

namespace atl::test {

class TlsClient {
 public:
  TlsClient() = default;
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;
  ~TlsClient() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
  }

  /// Connects to 127.0.0.1:port and shakes hands; false (with error() set) on
  /// failure. `sni` empty: no server name; `alpn`: protocols in client order.
  bool connect(std::uint16_t port, const std::string& sni = "localhost",
               const std::vector<std::string>& alpn = {}, int timeout_ms = 5000) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    // The test certificates are self-signed: the tests check which one was
    // served, not the chain.
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    fd_.reset(connect_tcp(port));
    if (!fd_) return fail("connect failed");
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_.get());
    // SSL_set_tlsext_host_name is a macro with a C-style cast: call what it expands to.
    if (!sni.empty())
      SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(sni.c_str()));
    if (!alpn.empty()) {
      std::string wire;
      for (const auto& p : alpn) {
        wire += char(p.size());
        wire += p;
      }
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                          unsigned(wire.size()));
    }
    if (SSL_connect(ssl_) != 1) return fail("handshake failed");
    return true;
  }

  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    return {reinterpret_cast<const char*>(p), len};
  }
  /// The common name of the certificate the server presented.
  std::string peer_common_name() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (!cert) return {};
    char buf[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    X509_free(cert);
    return buf;
  }
  bool send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      std::size_t put = 0;
      if (SSL_write_ex(ssl_, data.data() + off, data.size() - off, &put) != 1) return false;
      off += put;
    }
    return true;
  }
  /// Reads until `n` bytes, EOF, an error or the socket timeout.
  std::string recv(std::size_t n) {
    std::string out;
    char buf[16384];
    while (out.size() < n) {
      std::size_t got = 0;
      if (SSL_read_ex(ssl_, buf, std::min(sizeof buf, n - out.size()), &got) != 1) break;
      out.append(buf, got);
    }
    return out;
  }
  int fd() const { return fd_.get(); }
  const std::string& error() const { return error_; }

 private:
  bool fail(const char* what) {
    error_ = what;
    unsigned long e = ERR_get_error();
    if (e) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      error_ += std::string(": ") + buf;
    }
    ERR_clear_error();
    return false;
  }
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  UniqueFd fd_;
  std::string error_;
};

}  // namespace atl::test
