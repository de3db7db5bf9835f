#include "core/tls/context.h"

#include "core/tls/internal/error.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace sluice::tls {

namespace {

std::string lastError() {
  return internal::takeError("unknown error");
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// DNS names of the certificate (subjectAltName), else its common name.
std::vector<std::string> certificateNames(X509* x) {
  std::vector<std::string> out;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (size_t i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) {
        const ASN1_STRING* s = g->d.dNSName;
        out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                        static_cast<size_t>(ASN1_STRING_length(s)))));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {
    X509_NAME* subject = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s)))));
    }
  }
  return out;
}

} // namespace

bool nameMatches(const std::string& pattern, const std::string& name) {
  if (pattern == name) {
    return true;
  }
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    size_t dot = name.find('.');
    return dot != std::string::npos && dot > 0 &&
           name.compare(dot, std::string::npos, pattern, 1, std::string::npos) == 0;
  }
  return false;
}

// --- server ---------------------------------------------------------------------------------

std::shared_ptr<const ServerContext>
ServerContext::create(const config::ListenerTls& cfg, const std::string& pointer,
                         std::vector<config::ConfigError>& errors) {
  std::shared_ptr<ServerContext> self(new ServerContext());
  // The loader admits only "http/1.1" (1 to 255 bytes, as the wire format needs).
  for (const std::string& p : cfg.alpn.empty() ? std::vector<std::string>{"http/1.1"} : cfg.alpn) {
    self->alpn_wire_.push_back(static_cast<char>(p.size()));
    self->alpn_wire_ += p;
  }
  const size_t before = errors.size();
  for (size_t i = 0; i < cfg.certificates.size(); i++) {
    const config::TlsCertificate& tc = cfg.certificates[i];
    const std::string cp = fmt::format("{}/certificates/{}", pointer, i);
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
      errors.push_back({cp, "cannot create a TLS context: " + lastError()});
      continue;
    }
    Cert cert;
    cert.ctx = ctx;
    self->certs_.push_back(cert); // freed by the destructor from here on
    if (SSL_CTX_use_certificate_chain_file(ctx, tc.cert_file.c_str()) != 1) {
      errors.push_back({cp + "/cert_file", "cannot load a PEM certificate chain from " +
                                               tc.cert_file + ": " + lastError()});
      continue;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, tc.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        errors.push_back(
            {cp + "/key_file", "the key does not match the certificate in " + tc.cert_file});
        continue;
      }
      errors.push_back({cp + "/key_file",
                        "cannot load a PEM private key from " + tc.key_file + ": " + lastError()});
      continue;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      errors.push_back(
          {cp + "/key_file", "the key does not match the certificate in " + tc.cert_file});
      ERR_clear_error();
      continue;
    }
    self->certs_.back().names = certificateNames(SSL_CTX_get0_certificate(ctx));
    SSL_CTX_set_min_proto_version(ctx, cfg.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_tlsext_servername_callback(ctx, &ServerContext::onServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx, self.get());
    SSL_CTX_set_alpn_select_cb(ctx, &ServerContext::onAlpn, self.get());
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); // tickets resume; no shared cache
  }
  if (errors.size() != before) {
    return nullptr;
  }
  if (self->certs_.empty()) {
    errors.push_back({pointer + "/certificates", "at least one certificate is needed"});
    return nullptr;
  }
  return self;
}

ServerContext::~ServerContext() {
  for (Cert& c : certs_) {
    SSL_CTX_free(c.ctx);
  }
}

bool ServerContext::open(Session& session) const {
  SSL* ssl = SSL_new(certs_.front().ctx);
  if (ssl == nullptr) {
    return false;
  }
  SSL_set_accept_state(ssl);
  session.attach(ssl, shared_from_this());
  return true;
}

const ServerContext::Cert* ServerContext::certFor(const char* server_name) const {
  if (server_name == nullptr) {
    return &certs_.front();
  }
  const std::string name = lower(server_name);
  for (const Cert& c : certs_) {
    for (const std::string& n : c.names) {
      if (n == name) {
        return &c; // an exact name wins over a wildcard of another certificate
      }
    }
  }
  for (const Cert& c : certs_) {
    for (const std::string& n : c.names) {
      if (nameMatches(n, name)) {
        return &c;
      }
    }
  }
  return &certs_.front();
}

int ServerContext::onServerName(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const Cert* c = self->certFor(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
  if (c->ctx != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, c->ctx);
  }
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::onAlpn(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                             unsigned in_len, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  // Our preference order: the first of our protocols the client offers.
  const auto* ours = reinterpret_cast<const uint8_t*>(self->alpn_wire_.data());
  const size_t ours_len = self->alpn_wire_.size();
  for (size_t i = 0; i < ours_len; i += 1 + ours[i]) {
    for (unsigned j = 0; j < in_len; j += 1u + in[j]) {
      if (in[j] == ours[i] && j + 1 + in[j] <= in_len &&
          std::memcmp(in + j + 1, ours + i + 1, ours[i]) == 0) {
        *out = in + j + 1;
        *out_len = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK; // no common protocol: carry on without ALPN
}

// --- client ---------------------------------------------------------------------------------

std::shared_ptr<const ClientContext>
ClientContext::create(const config::ClusterTls& cfg, const std::string& pointer,
                         std::vector<config::ConfigError>& errors) {
  std::shared_ptr<ClientContext> self(new ClientContext());
  self->sni_ = cfg.sni;
  self->verify_ = cfg.verify;
  self->ctx_ = SSL_CTX_new(TLS_client_method());
  if (self->ctx_ == nullptr) {
    errors.push_back({pointer, "cannot create a TLS context: " + lastError()});
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(self->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(self->ctx_, TLS1_3_VERSION);
  if (cfg.verify) {
    if (cfg.ca_file.empty()) {
      errors.push_back({pointer + "/ca_file", "required when verify is true"});
      return nullptr;
    }
    if (SSL_CTX_load_verify_locations(self->ctx_, cfg.ca_file.c_str(), nullptr) != 1) {
      errors.push_back({pointer + "/ca_file",
                        "cannot load PEM certificates from " + cfg.ca_file + ": " + lastError()});
      return nullptr;
    }
    SSL_CTX_set_verify(self->ctx_, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(self->ctx_, SSL_VERIFY_NONE, nullptr);
  }
  static const uint8_t kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(self->ctx_, kAlpn, sizeof(kAlpn));
  return self;
}

ClientContext::~ClientContext() {
  SSL_CTX_free(ctx_);
}

bool ClientContext::open(Session& session, const std::string& host, bool host_is_ip) const {
  SSL* ssl = SSL_new(ctx_);
  if (ssl == nullptr) {
    return false;
  }
  SSL_set_connect_state(ssl);
  const std::string& name = sni_.empty() ? host : sni_;
  const bool ip = sni_.empty() && host_is_ip;
  if (!ip) {
    SSL_set_tlsext_host_name(ssl, name.c_str());
  }
  if (verify_) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    int armed = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                   : X509_VERIFY_PARAM_set1_host(param, name.data(), name.size());
    if (armed != 1) {
      SSL_free(ssl); // never connect without the name check that verify promises
      return false;
    }
  }
  session.attach(ssl, shared_from_this());
  return true;
}

} // namespace sluice::tls
