#pragma once

// Test keys generated once per process with BoringSSL, a small JWS minter over them, and a
// harness that drives the jwt_authn filter through its C ABI on the fake host.

#include "filters/jwt_authn/base64url.h"
#include "filters/jwt_authn/jwt_authn_filter.h"
#include "sluice/filter.h"
#include "test/filters/common/fake_host.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

namespace sluice::testing::jwt {

using Json = nlohmann::json;
using filters::jwt_authn::base64UrlEncode;

inline std::string b64(std::string_view in) {
  std::string out;
  base64UrlEncode(in, out);
  return out;
}

inline std::string bnBytes(const BIGNUM* bn, size_t len = 0) {
  std::string out(len == 0 ? BN_num_bytes(bn) : len, '\0');
  BN_bn2bin_padded(reinterpret_cast<uint8_t*>(out.data()), out.size(), bn);
  return out;
}

// The stream start time every test uses as "now" (FakeStream's default start_unix_us).
constexpr int64_t kNow = 1764000000;

struct TestKeys {
  bssl::UniquePtr<EVP_PKEY> rsa;
  bssl::UniquePtr<EVP_PKEY> rsa2; // a second RSA key, not in the default JWKS
  bssl::UniquePtr<EC_KEY> ec256;
  bssl::UniquePtr<EC_KEY> ec384;
  uint8_t ed_public[32];
  uint8_t ed_private[64];
  std::string hmac_secret;

  static const TestKeys& get() {
    static TestKeys keys;
    return keys;
  }

  static bssl::UniquePtr<EVP_PKEY> makeRsa() {
    bssl::UniquePtr<RSA> rsa(RSA_new());
    bssl::UniquePtr<BIGNUM> e(BN_new());
    BN_set_word(e.get(), RSA_F4);
    if (!RSA_generate_key_ex(rsa.get(), 2048, e.get(), nullptr)) {
      std::abort();
    }
    bssl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
    EVP_PKEY_set1_RSA(pkey.get(), rsa.get());
    return pkey;
  }
  static bssl::UniquePtr<EC_KEY> makeEc(int nid) {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(nid));
    if (!EC_KEY_generate_key(ec.get())) {
      std::abort();
    }
    return ec;
  }

  TestKeys() {
    rsa = makeRsa();
    rsa2 = makeRsa();
    ec256 = makeEc(NID_X9_62_prime256v1);
    ec384 = makeEc(NID_secp384r1);
    ED25519_keypair(ed_public, ed_private);
    hmac_secret.resize(32);
    RAND_bytes(reinterpret_cast<uint8_t*>(hmac_secret.data()), hmac_secret.size());
  }

  static Json rsaJwk(const EVP_PKEY* pkey, const std::string& kid) {
    const RSA* r = EVP_PKEY_get0_RSA(pkey);
    return Json{{"kty", "RSA"},
                {"kid", kid},
                {"use", "sig"},
                {"n", b64(bnBytes(RSA_get0_n(r)))},
                {"e", b64(bnBytes(RSA_get0_e(r)))}};
  }
  static Json ecJwk(const EC_KEY* ec, const std::string& kid, const char* crv, size_t len) {
    bssl::UniquePtr<BIGNUM> x(BN_new());
    bssl::UniquePtr<BIGNUM> y(BN_new());
    EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec), x.get(),
                                        y.get(), nullptr);
    return Json{{"kty", "EC"},
                {"kid", kid},
                {"crv", crv},
                {"x", b64(bnBytes(x.get(), len))},
                {"y", b64(bnBytes(y.get(), len))}};
  }

  // Every key, kids "rsa", "ec256", "ec384", "ed", "hmac".
  Json jwks() const {
    Json keys = Json::array();
    keys.push_back(rsaJwk(rsa.get(), "rsa"));
    keys.push_back(ecJwk(ec256.get(), "ec256", "P-256", 32));
    keys.push_back(ecJwk(ec384.get(), "ec384", "P-384", 48));
    keys.push_back(
        Json{{"kty", "OKP"},
             {"kid", "ed"},
             {"crv", "Ed25519"},
             {"x", b64(std::string_view(reinterpret_cast<const char*>(ed_public), 32))}});
    keys.push_back(Json{{"kty", "oct"}, {"kid", "hmac"}, {"k", b64(hmac_secret)}});
    return Json{{"keys", keys}};
  }
};

// Signs `signing_input` with `alg` using the test key `which` ("rsa", "rsa2", or the alg's own).
inline std::string sign(const std::string& alg, const std::string& input,
                        const std::string& which = "") {
  const TestKeys& k = TestKeys::get();
  const auto* data = reinterpret_cast<const uint8_t*>(input.data());
  if (alg == "RS256" || alg == "RS384" || alg == "RS512" || alg == "PS256") {
    const EVP_MD* md = alg == "RS384" ? EVP_sha384() : alg == "RS512" ? EVP_sha512() : EVP_sha256();
    bssl::ScopedEVP_MD_CTX ctx;
    EVP_PKEY_CTX* pctx = nullptr;
    EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, which == "rsa2" ? k.rsa2.get() : k.rsa.get());
    if (alg == "PS256") {
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1);
    }
    size_t len = 0;
    EVP_DigestSign(ctx.get(), nullptr, &len, data, input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<uint8_t*>(sig.data()), &len, data, input.size());
    sig.resize(len);
    return sig;
  }
  if (alg == "ES256" || alg == "ES384") {
    const bool p256 = alg == "ES256";
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_Digest(data, input.size(), digest, &dlen, p256 ? EVP_sha256() : EVP_sha384(), nullptr);
    bssl::UniquePtr<ECDSA_SIG> sig(
        ECDSA_do_sign(digest, dlen, p256 ? k.ec256.get() : k.ec384.get()));
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    const size_t n = p256 ? 32 : 48;
    return bnBytes(r, n) + bnBytes(s, n);
  }
  if (alg == "EdDSA") {
    uint8_t sig[64];
    ED25519_sign(sig, data, input.size(), k.ed_private);
    return std::string(reinterpret_cast<const char*>(sig), 64);
  }
  if (alg == "HS256") {
    // `which` may name another secret (the RSA public key bytes in the confusion test).
    const std::string& secret = which.empty() ? k.hmac_secret : which;
    uint8_t mac[32];
    unsigned len = 0;
    HMAC(EVP_sha256(), secret.data(), secret.size(), data, input.size(), mac, &len);
    return std::string(reinterpret_cast<const char*>(mac), len);
  }
  return ""; // "none"
}

inline Json defaultClaims() {
  return Json{{"iss", "https://idp.example.com/"},
              {"aud", "api"},
              {"sub", "alice"},
              {"exp", kNow + 3600},
              {"iat", kNow - 10}};
}

inline std::string kidFor(const std::string& alg) {
  if (alg == "ES256") {
    return "ec256";
  }
  if (alg == "ES384") {
    return "ec384";
  }
  if (alg == "EdDSA") {
    return "ed";
  }
  if (alg == "HS256") {
    return "hmac";
  }
  return "rsa";
}

inline std::string mint(const std::string& alg, const Json& claims = defaultClaims(),
                        const std::string& which = "", const std::string& kid = "-") {
  Json header{{"alg", alg}, {"typ", "JWT"}};
  const std::string k = kid == "-" ? kidFor(alg) : kid;
  if (!k.empty()) {
    header["kid"] = k;
  }
  const std::string input = b64(header.dump()) + "." + b64(claims.dump());
  return input + "." + b64(sign(alg, input, which));
}

inline Json provider(const Json& extra = Json::object()) {
  Json p{{"name", "idp"},
         {"issuer", "https://idp.example.com/"},
         {"audiences", {"api"}},
         {"algorithms", {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256"}},
         {"jwks", {{"inline", TestKeys::get().jwks()}}}};
  for (auto it = extra.begin(); it != extra.end(); ++it) {
    if (it.value().is_null()) {
      p.erase(it.key());
    } else {
      p[it.key()] = it.value();
    }
  }
  return p;
}

inline Json config(const Json& provider_json = provider(), const Json& rules = Json()) {
  return Json{{"providers", {provider_json}},
              {"rules", rules.is_null()
                            ? Json::array({Json{{"match", {{"prefix", "/public"}}}},
                                           Json{{"match", {{"prefix", "/"}}}, {"requires", "idp"}}})
                            : rules}};
}

class TempDir {
public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-jwt-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ + "/" + name, std::ios::binary) << text;
    return path_ + "/" + name;
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

struct Result {
  sluice_status_t status;
  std::unique_ptr<FakeStream> stream;
  void* filter = nullptr;

  bool denied() const { return !stream->local_replies.empty(); }
  uint32_t code() const { return stream->local_replies.empty() ? 0 : stream->local_replies.back(); }
  std::string replyHeader(const std::string& name) const {
    for (const auto& [n, v] : stream->local_reply_headers) {
      if (FakeStream::iequals(n, name)) {
        return v;
      }
    }
    return "<absent>";
  }
  std::string requestHeader(const std::string& name) const {
    std::string out = "<absent>";
    int count = 0;
    for (const auto& [n, v] : stream->request_headers) {
      if (FakeStream::iequals(n, name)) {
        out = v;
        count++;
      }
    }
    return count > 1 ? "<duplicated>" : out;
  }
};

class Harness {
public:
  Harness() {
    module_ = sluice_builtin_jwt_authn_init(host.table(), SLUICE_ABI_VERSION_MAJOR,
                                            SLUICE_ABI_VERSION_MINOR);
    desc = module_->filters[0];
    ctx.name = "jwt";
    ctx.clusters = {"idp_cluster"};
  }
  ~Harness() { destroy(); }

  bool load(const Json& json) {
    destroy();
    ctx.errors.clear();
    const std::string text = json.dump();
    config = desc->sluice_on_config_new(host.table(), ctx.handle(), {text.data(), text.size()});
    return config != nullptr;
  }

  FakeWorker& worker() {
    if (state_ == nullptr) {
      state_ = desc->sluice_on_worker_new(config, worker_.handle());
    }
    return worker_;
  }

  // Starts a stream and runs its request headers hook. Call finish() to end it.
  Result start(const std::string& path, const HeaderList& headers = {}, int64_t now = kNow) {
    worker();
    Result r;
    r.stream = std::make_unique<FakeStream>();
    r.stream->worker = &worker_;
    r.stream->start_unix_us = static_cast<uint64_t>(now) * 1000000ull;
    r.stream->setHeader(SLUICE_HEADERS_REQUEST, ":path", path);
    for (const auto& [n, v] : headers) {
      r.stream->map(SLUICE_HEADERS_REQUEST).emplace_back(n, v);
    }
    r.filter = desc->sluice_on_stream_new(config, state_, r.stream->handle());
    r.status = desc->sluice_on_request_headers(r.filter, r.stream->handle(), true);
    return r;
  }
  void finish(Result& r) {
    if (r.filter != nullptr) {
      desc->sluice_on_stream_complete(r.filter, r.stream->handle());
      desc->sluice_on_stream_destroy(r.filter);
      r.filter = nullptr;
    }
  }
  // A whole request: headers hook, then complete and destroy.
  Result request(const std::string& path, const HeaderList& headers = {}, int64_t now = kNow) {
    Result r = start(path, headers, now);
    finish(r);
    return r;
  }
  Result bearer(const std::string& token, const std::string& path = "/api", int64_t now = kNow) {
    return request(path, {{"authorization", "Bearer " + token}}, now);
  }

  double denied(const std::string& reason) const {
    for (const FakeMetric& m : host.metrics()) {
      if (m.name == "sluice_jwt_authn_denied_total" && m.labels.size() == 2 &&
          m.labels[1].second == reason) {
        return m.value;
      }
    }
    return -1;
  }

  const filters::jwt_authn::WorkerState* state() const {
    return static_cast<const filters::jwt_authn::WorkerState*>(state_);
  }

  void destroyWorker() {
    if (state_ != nullptr) {
      desc->sluice_on_worker_destroy(config, state_);
      state_ = nullptr;
    }
  }
  void destroy() {
    if (config == nullptr) {
      return;
    }
    destroyWorker();
    desc->sluice_on_config_destroy(config);
    config = nullptr;
    worker_.timers.clear();
    worker_.posted.clear();
  }

  FakeHost host;
  FakeConfigCtx ctx;
  const sluice_filter_descriptor_t* desc = nullptr;
  void* config = nullptr;

private:
  const sluice_module_t* module_ = nullptr;
  FakeWorker worker_;
  void* state_ = nullptr;
};

} // namespace sluice::testing::jwt
