#pragma once

// TLS contexts with BoringSSL (android-libboringssl-dev), built when a config is loaded (never on
// a request): ServerContext for a listener (one SSL_CTX per certificate, chosen by SNI against
// each certificate's names, the first one for a client without SNI or with an unknown name),
// ClientContext for a cluster (SNI, chain and name verification against ca_file). Each opens the
// Session of one connection, which keeps its context alive.
//
// core/tls is the only room that sees BoringSSL: its types are only forward-declared here.

#include "core/config/config.h"
#include "core/tls/session.h"

#include <memory>
#include <string>
#include <vector>

struct ssl_ctx_st;

namespace sluice::tls {

class ServerContext : public std::enable_shared_from_this<ServerContext> {
public:
  // Loads every certificate chain and key (and checks that they match). On failure returns null
  // and appends errors (pointer "<pointer>/certificates/N/key_file", ...) to `errors`.
  static std::shared_ptr<const ServerContext> create(const config::ListenerTls& cfg,
                                                     const std::string& pointer,
                                                     std::vector<config::ConfigError>& errors);
  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // Opens `session` (inactive) for one accepted connection. False when out of memory.
  bool open(Session& session) const;
  // The names (DNS SANs, else the CN) the i-th certificate answers for.
  const std::vector<std::string>& names(size_t i) const { return certs_[i].names; }

private:
  ServerContext() = default;
  struct Cert {
    ssl_ctx_st* ctx = nullptr;
    std::vector<std::string> names; // lower-case; "*.example.com" wildcards kept as written
  };
  static int onServerName(ssl_st* ssl, int* alert, void* arg);
  static int onAlpn(ssl_st* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                    unsigned in_len, void* arg);
  const Cert* certFor(const char* server_name) const;

  std::vector<Cert> certs_;
  std::string alpn_wire_; // our protocols, length-prefixed, in preference order
};

class ClientContext : public std::enable_shared_from_this<ClientContext> {
public:
  // Loads ca_file (when verify is on). On failure returns null and appends errors.
  static std::shared_ptr<const ClientContext> create(const config::ClusterTls& cfg,
                                                     const std::string& pointer,
                                                     std::vector<config::ConfigError>& errors);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // Opens `session` (inactive) for one connection to the endpoint `host` (an IP literal when
  // `host_is_ip`). The server name is `sni`, else the endpoint's host name, as nginx's
  // proxy_ssl_name defaults to the host of proxy_pass: it is sent as SNI (not an IP address,
  // RFC 6066 §3) and, with verify on, the certificate must match it (an IP address endpoint
  // without sni: an iPAddress SAN of the certificate). False when out of memory.
  bool open(Session& session, const std::string& host, bool host_is_ip) const;

private:
  ClientContext() = default;
  ssl_ctx_st* ctx_ = nullptr;
  std::string sni_;
  bool verify_ = true;
};

// True if `name` (lower-case) is answered by certificate name `pattern` (exact, or a "*." wildcard
// that stands for exactly one leftmost label).
bool nameMatches(const std::string& pattern, const std::string& name);

} // namespace sluice::tls
