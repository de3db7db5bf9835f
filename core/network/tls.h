#pragma once

// TLS with BoringSSL (android-libboringssl-dev), over memory BIOs so that the libuv connection
// keeps doing the socket I/O: ciphertext read from the socket is fed to the SSL object, plaintext
// comes out into the connection's read buffer; plaintext written by the owner is encrypted into
// a wire buffer that the connection sends.
//
// Contexts are built when a config is loaded (never on a request): TlsServerContext for a
// listener (one SSL_CTX per certificate, chosen by SNI against each certificate's names, the
// first one for a client without SNI or with an unknown name), TlsClientContext for a cluster
// (SNI, chain and name verification against ca_file). Connections keep their context alive.

#include "core/config/config.h"

#include <memory>
#include <string>
#include <vector>

#include <openssl/base.h>

namespace sluice::network {

class TlsServerContext {
public:
  // Loads every certificate chain and key (and checks that they match). On failure returns null
  // and appends errors (pointer "<pointer>/certificates/N/key_file", ...) to `errors`.
  static std::shared_ptr<const TlsServerContext> create(const config::ListenerTls& cfg,
                                                        const std::string& pointer,
                                                        std::vector<config::ConfigError>& errors);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // A server-side SSL for one accepted connection (caller owns it).
  SSL* newSsl() const;
  // The names (DNS SANs, else the CN) the i-th certificate answers for.
  const std::vector<std::string>& names(size_t i) const { return certs_[i].names; }

private:
  TlsServerContext() = default;
  struct Cert {
    SSL_CTX* ctx = nullptr;
    std::vector<std::string> names; // lower-case; "*.example.com" wildcards kept as written
  };
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpn(SSL* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                    unsigned in_len, void* arg);
  const Cert* certFor(const char* server_name) const;

  std::vector<Cert> certs_;
  std::string alpn_wire_; // our protocols, length-prefixed, in preference order
};

class TlsClientContext {
public:
  // Loads ca_file (when verify is on). On failure returns null and appends errors.
  static std::shared_ptr<const TlsClientContext> create(const config::ClusterTls& cfg,
                                                        const std::string& pointer,
                                                        std::vector<config::ConfigError>& errors);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  // A client-side SSL for one upstream connection: SNI set, name verification armed.
  SSL* newSsl() const;

private:
  TlsClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
  std::string sni_;
  bool verify_ = true;
};

// True if `name` (lower-case) is answered by certificate name `pattern` (exact, or a "*." wildcard
// that stands for exactly one leftmost label).
bool tlsNameMatches(const std::string& pattern, const std::string& name);

} // namespace sluice::network
