#pragma once
// TLS server configuration (OpenSSL 3): certificates, ALPN and SNI.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace atl::net {

struct TlsOptions {
  /// PEM certificate chain and private key served by default.
  std::string cert_file;
  std::string key_file;
  /// ALPN protocols in server preference order, e.g. {"h2", "http/1.1"}.
  /// Empty: no ALPN negotiation.
  std::vector<std::string> alpn;
  /// Per-host certificates chosen by SNI; unknown names get the default.
  /// An empty `name` takes the names the certificate itself carries (its
  /// subjectAltName DNS entries, or its CN), wildcards ("*.example.com",
  /// one label deep, as TLS clients check them) included.
  struct Host {
    std::string name;
    std::string cert_file;
    std::string key_file;
  };
  std::vector<Host> hosts;
  /// A client must finish the handshake within this time. Default 10 s: a
  /// client that opens a connection and sends nothing holds a slot (and a
  /// TLS state of some kilobytes) for no more than this.
  std::int64_t handshake_timeout_ms = 10'000;
  /// What a client that speaks plain text to this port (its first byte is
  /// not a TLS handshake record) is sent before the connection closes: the
  /// protocol layer puts an HTTP 400 here (nginx's 497 idea). Empty: close.
  std::string plaintext_reply;
};

/// Shared, immutable-after-construction TLS state for a server.
/// TLS 1.2 is the minimum; session tickets are on.
class TlsContext {
 public:
  /// Loads every certificate and key; throws std::runtime_error naming the
  /// file and OpenSSL's reason when one cannot be used.
  explicit TlsContext(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /// A new server-side session on a connected descriptor.
  SSL* new_session(int fd) const;

  /// Replaces the SNI certificates (TlsOptions::hosts) for handshakes that
  /// start from now on; those in progress keep theirs. Every file is loaded
  /// before anything changes: on an error (thrown, naming the file) the old
  /// set stays. Safe to call from any thread.
  void set_hosts(const std::vector<TlsOptions::Host>& hosts);

 private:
  struct SniTable;
  static int on_servername(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                     const unsigned char* in, unsigned inlen, void* arg);
  SSL_CTX* make_ctx(const std::string& cert, const std::string& key);
  std::shared_ptr<const SniTable> build(const std::vector<TlsOptions::Host>& hosts);

  SSL_CTX* default_ = nullptr;
  mutable std::mutex sni_mutex_;
  std::shared_ptr<const SniTable> sni_;  // guarded by sni_mutex_
  std::string alpn_wire_;                // length-prefixed protocol list
};

/// The reason OpenSSL gives for its last error ("unknown error" if none);
/// its error queue is cleared.
std::string openssl_reason();

/// What a certificate and key pair would serve: its names (as TlsOptions
/// says), after checking that both files load, that they match, and that the
/// certificate is within its validity period. Throws std::runtime_error
/// naming the file and the reason.
std::vector<std::string> check_certificate(const std::string& cert_file,
                                           const std::string& key_file);

}  // namespace atl::net
