#include "filters/jwt_authn/jwks.h"

#include "filters/common/config_reader.h"
#include "filters/jwt_authn/base64url.h"

#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>

namespace sluice::filters::jwt_authn {

namespace {

using Json = nlohmann::json;

constexpr const char* kAlgNames[kAlgCount] = {"RS256", "RS384", "RS512", "PS256",
                                              "ES256", "ES384", "EdDSA", "HS256"};

// Smallest RSA modulus accepted: shorter keys are breakable.
constexpr unsigned kMinRsaBits = 2048;

bool member(const Json& jwk, const char* name, std::string& decoded, std::string& field,
            std::string& error) {
  auto it = jwk.find(name);
  if (it == jwk.end()) {
    field = name;
    error = std::string("missing \"") + name + "\"";
    return false;
  }
  if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
      !base64UrlDecode(it->get_ref<const std::string&>(), decoded, true)) {
    field = name;
    error = std::string("\"") + name + "\" is not a base64url string";
    return false;
  }
  return true;
}

bssl::UniquePtr<BIGNUM> bignum(const std::string& bytes) {
  return bssl::UniquePtr<BIGNUM>(
      BN_bin2bn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), nullptr));
}

bool rsaKey(const Json& jwk, Jwk& out, std::string& field, std::string& error) {
  std::string n;
  std::string e;
  if (!member(jwk, "n", n, field, error) || !member(jwk, "e", e, field, error)) {
    return false;
  }
  bssl::UniquePtr<BIGNUM> bn_n = bignum(n);
  bssl::UniquePtr<BIGNUM> bn_e = bignum(e);
  bssl::UniquePtr<RSA> rsa(RSA_new());
  if (!bn_n || !bn_e || !rsa || BN_num_bits(bn_n.get()) < kMinRsaBits ||
      !RSA_set0_key(rsa.get(), bn_n.get(), bn_e.get(), nullptr)) {
    field = "n";
    error = "not a usable RSA public key (modulus of at least " + std::to_string(kMinRsaBits) +
            " bits expected)";
    return false;
  }
  bn_n.release(); // owned by rsa now
  bn_e.release();
  if (!RSA_check_key(rsa.get())) {
    field = "";
    error = "invalid RSA public key";
    return false;
  }
  out.pkey.reset(EVP_PKEY_new());
  if (!out.pkey || !EVP_PKEY_set1_RSA(out.pkey.get(), rsa.get())) {
    error = "cannot build the RSA key";
    return false;
  }
  out.type = KeyType::Rsa;
  return true;
}

bool ecKey(const Json& jwk, Jwk& out, std::string& field, std::string& error) {
  auto crv = jwk.find("crv");
  int nid = 0;
  size_t coord = 0;
  if (crv != jwk.end() && *crv == "P-256") {
    nid = NID_X9_62_prime256v1;
    coord = 32;
    out.type = KeyType::EcP256;
  } else if (crv != jwk.end() && *crv == "P-384") {
    nid = NID_secp384r1;
    coord = 48;
    out.type = KeyType::EcP384;
  } else {
    field = "crv";
    error = "expected \"crv\" \"P-256\" or \"P-384\"";
    return false;
  }
  std::string x;
  std::string y;
  if (!member(jwk, "x", x, field, error) || !member(jwk, "y", y, field, error)) {
    return false;
  }
  // RFC 7518 wants full-length coordinates, but common libraries (PyJWT before 2.7, among
  // others) drop leading zero bytes: a shorter value is accepted as the same number.
  if (x.empty() || y.empty() || x.size() > coord || y.size() > coord) {
    field = (x.empty() || x.size() > coord) ? "x" : "y";
    error = "coordinate of the wrong length for " + crv->get<std::string>();
    return false;
  }
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(nid));
  bssl::UniquePtr<BIGNUM> bx = bignum(x);
  bssl::UniquePtr<BIGNUM> by = bignum(y);
  if (!ec || !bx || !by ||
      !EC_KEY_set_public_key_affine_coordinates(ec.get(), bx.get(), by.get())) {
    field = "";
    error = "the point is not on the curve";
    return false;
  }
  out.pkey.reset(EVP_PKEY_new());
  if (!out.pkey || !EVP_PKEY_set1_EC_KEY(out.pkey.get(), ec.get())) {
    error = "cannot build the EC key";
    return false;
  }
  return true;
}

} // namespace

bool parseAlg(std::string_view name, Alg& out) {
  for (size_t i = 0; i < kAlgCount; i++) {
    if (name == kAlgNames[i]) {
      out = static_cast<Alg>(i);
      return true;
    }
  }
  return false;
}

const char* algName(Alg alg) {
  return kAlgNames[static_cast<size_t>(alg)];
}

KeyType keyTypeFor(Alg alg) {
  switch (alg) {
  case Alg::RS256:
  case Alg::RS384:
  case Alg::RS512:
  case Alg::PS256:
    return KeyType::Rsa;
  case Alg::ES256:
    return KeyType::EcP256;
  case Alg::ES384:
    return KeyType::EcP384;
  case Alg::EdDSA:
    return KeyType::Ed25519;
  case Alg::HS256:
    return KeyType::Oct;
  }
  return KeyType::Oct;
}

bool parseJwk(const Json& jwk, Jwk& out, bool& skipped, std::string& field, std::string& error) {
  skipped = false;
  field.clear();
  if (!jwk.is_object()) {
    error = "a JWK must be an object";
    return false;
  }
  auto use = jwk.find("use");
  if (use != jwk.end()) {
    if (!use->is_string()) {
      field = "use";
      error = "expected a string, got " + common::ConfigReader::describe(*use);
      return false;
    }
    if (*use != "sig") {
      skipped = true;
      return true;
    }
  }
  auto kid = jwk.find("kid");
  if (kid != jwk.end()) {
    if (!kid->is_string()) {
      field = "kid";
      error = "expected a string, got " + common::ConfigReader::describe(*kid);
      return false;
    }
    out.kid = kid->get<std::string>();
  }
  auto alg = jwk.find("alg");
  if (alg != jwk.end()) {
    if (!alg->is_string() || !parseAlg(alg->get_ref<const std::string&>(), out.alg)) {
      field = "alg";
      error = "unsupported \"alg\" " + alg->dump();
      return false;
    }
    out.has_alg = true;
  }
  auto kty = jwk.find("kty");
  if (kty == jwk.end() || !kty->is_string()) {
    field = "kty";
    error = "missing \"kty\"";
    return false;
  }
  const std::string& t = kty->get_ref<const std::string&>();
  bool ok = false;
  if (t == "RSA") {
    ok = rsaKey(jwk, out, field, error);
  } else if (t == "EC") {
    ok = ecKey(jwk, out, field, error);
  } else if (t == "OKP") {
    auto crv = jwk.find("crv");
    if (crv == jwk.end() || *crv != "Ed25519") {
      field = "crv";
      error = "expected \"crv\" \"Ed25519\"";
      return false;
    }
    ok = member(jwk, "x", out.raw, field, error);
    if (ok && out.raw.size() != ED25519_PUBLIC_KEY_LEN) {
      field = "x";
      error = "an Ed25519 public key is 32 bytes";
      ok = false;
    }
    out.type = KeyType::Ed25519;
  } else if (t == "oct") {
    ok = member(jwk, "k", out.raw, field, error);
    out.type = KeyType::Oct;
  } else {
    field = "kty";
    error = "unsupported \"kty\" \"" + t + "\" (expected RSA, EC, OKP or oct)";
    return false;
  }
  if (ok && out.has_alg && keyTypeFor(out.alg) != out.type) {
    field = "alg";
    error = std::string("\"alg\" ") + algName(out.alg) + " does not fit a key of kty \"" + t + "\"";
    ok = false;
  }
  return ok;
}

std::shared_ptr<const KeySet> parseJwks(const Json& doc, bool strict,
                                        std::vector<JwksError>& errors) {
  if (!doc.is_object()) {
    errors.push_back({"", "a JWKS must be an object with \"keys\""});
    return nullptr;
  }
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) {
    errors.push_back({"/keys", "a JWKS needs a \"keys\" array"});
    return nullptr;
  }
  auto set = std::make_shared<KeySet>();
  bool good = true;
  for (size_t i = 0; i < keys->size(); i++) {
    Jwk jwk;
    bool skipped = false;
    std::string field;
    std::string error;
    if (!parseJwk((*keys)[i], jwk, skipped, field, error)) {
      errors.push_back({"/keys/" + std::to_string(i) + (field.empty() ? "" : "/" + field), error});
      good = false;
      continue;
    }
    if (!skipped) {
      set->keys.push_back(std::move(jwk));
    }
  }
  if (strict && !good) {
    return nullptr;
  }
  if (set->keys.empty()) {
    errors.push_back({"/keys", "no usable signature key"});
    return nullptr;
  }
  return set;
}

} // namespace sluice::filters::jwt_authn
