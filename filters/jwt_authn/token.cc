#include "filters/jwt_authn/token.h"

#include "filters/jwt_authn/base64url.h"

#include <nlohmann/json.hpp>

#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/digest.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rsa.h>

namespace sluice::filters::jwt_authn {

namespace {

using Json = nlohmann::json;

constexpr const char* kReasonNames[kReasonCount] = {"missing",  "malformed",     "signature",
                                                    "expired",  "not_yet_valid", "issuer",
                                                    "audience", "algorithm"};

const EVP_MD* digestFor(Alg alg) {
  switch (alg) {
  case Alg::RS384:
  case Alg::ES384:
    return EVP_sha384();
  case Alg::RS512:
    return EVP_sha512();
  default:
    return EVP_sha256();
  }
}

const uint8_t* bytes(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

bool verifyRsa(Alg alg, const Jwk& key, std::string_view data, std::string_view sig) {
  bssl::ScopedEVP_MD_CTX ctx;
  EVP_PKEY_CTX* pctx = nullptr;
  if (!EVP_DigestVerifyInit(ctx.get(), &pctx, digestFor(alg), nullptr, key.pkey.get())) {
    return false;
  }
  if (alg == Alg::PS256 && (!EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) ||
                            !EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1 /* = digest length */))) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), bytes(sig), sig.size(), bytes(data), data.size()) == 1;
}

// JOSE carries ECDSA signatures as the raw r || s, each the curve's coordinate size.
bool verifyEc(Alg alg, const Jwk& key, std::string_view data, std::string_view sig) {
  const size_t half = alg == Alg::ES256 ? 32 : 48;
  if (sig.size() != 2 * half) {
    return false;
  }
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned digest_len = 0;
  if (!EVP_Digest(data.data(), data.size(), digest, &digest_len, digestFor(alg), nullptr)) {
    return false;
  }
  bssl::UniquePtr<ECDSA_SIG> ecdsa(ECDSA_SIG_new());
  if (!ecdsa) {
    return false;
  }
  BIGNUM* r = BN_bin2bn(bytes(sig), half, nullptr);
  BIGNUM* s = BN_bin2bn(bytes(sig) + half, half, nullptr);
  if (r == nullptr || s == nullptr || !ECDSA_SIG_set0(ecdsa.get(), r, s)) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(key.pkey.get());
  return ec != nullptr && ECDSA_do_verify(digest, digest_len, ecdsa.get(), ec) == 1;
}

bool verifyHmac(const Jwk& key, std::string_view data, std::string_view sig) {
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  if (HMAC(EVP_sha256(), key.raw.data(), key.raw.size(), bytes(data), data.size(), mac, &mac_len) ==
      nullptr) {
    return false;
  }
  return sig.size() == mac_len && CRYPTO_memcmp(mac, sig.data(), mac_len) == 0;
}

// Parses a decoded segment as a JSON object, without exceptions.
bool parseObject(const std::string& text, Json& out) {
  out = Json::parse(text, nullptr, false);
  return !out.is_discarded() && out.is_object();
}

// A claim by name, or by dotted path into nested objects ("realm.role").
const Json* findClaim(const Json& payload, const ClaimToHeader& c) {
  auto direct = payload.find(c.claim);
  if (direct != payload.end()) {
    return &*direct;
  }
  const Json* v = &payload;
  for (const std::string& part : c.path) {
    if (!v->is_object()) {
      return nullptr;
    }
    auto it = v->find(part);
    if (it == v->end()) {
      return nullptr;
    }
    v = &*it;
  }
  return v;
}

// A header value from a string, number or boolean claim; false for anything else or for a value
// that cannot travel in a header (control characters).
bool claimValue(const Json& v, std::string& out) {
  if (v.is_string()) {
    out = v.get<std::string>();
  } else if (v.is_boolean()) {
    out = v.get<bool>() ? "true" : "false";
  } else if (v.is_number()) {
    out = v.dump();
  } else {
    return false;
  }
  for (unsigned char c : out) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}

bool numericDate(const Json& payload, const char* name, double& out, bool& malformed) {
  auto it = payload.find(name);
  if (it == payload.end()) {
    return false;
  }
  if (!it->is_number()) {
    malformed = true;
    return false;
  }
  out = it->get<double>();
  return true;
}

} // namespace

const char* reasonName(Outcome outcome) {
  return outcome == Outcome::Ok ? "ok" : kReasonNames[reasonIndex(outcome)];
}

bool verifySignature(Alg alg, const Jwk& key, std::string_view data, std::string_view sig) {
  bool ok = false;
  switch (alg) {
  case Alg::RS256:
  case Alg::RS384:
  case Alg::RS512:
  case Alg::PS256:
    ok = verifyRsa(alg, key, data, sig);
    break;
  case Alg::ES256:
  case Alg::ES384:
    ok = verifyEc(alg, key, data, sig);
    break;
  case Alg::EdDSA:
    ok = sig.size() == ED25519_SIGNATURE_LEN &&
         ED25519_verify(bytes(data), data.size(), bytes(sig), bytes(key.raw)) == 1;
    break;
  case Alg::HS256:
    ok = verifyHmac(key, data, sig);
    break;
  }
  if (!ok) {
    ERR_clear_error(); // keep the thread's error queue from growing with rejected tokens
  }
  return ok;
}

Outcome verifyToken(const Provider& p, const KeySet* keys, std::string_view token, double now_s,
                    VerifyScratch& scratch, VerifiedToken& out) {
  // `out` is reused across calls: nothing of a previous token may leak into this one.
  out.exp = std::numeric_limits<double>::infinity();
  out.nbf = -std::numeric_limits<double>::infinity();
  if (token.empty() || token.size() > kMaxTokenBytes) {
    return Outcome::Malformed;
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Outcome::Malformed;
  }
  const std::string_view header_b64 = token.substr(0, dot1);
  const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = token.substr(dot2 + 1);
  Json header;
  if (!base64UrlDecode(header_b64, scratch.header) || !parseObject(scratch.header, header)) {
    return Outcome::Malformed;
  }
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) {
    return Outcome::Malformed;
  }
  Alg alg;
  if (!parseAlg(alg_it->get_ref<const std::string&>(), alg) || (p.algorithms & algBit(alg)) == 0) {
    return Outcome::Algorithm; // "none" included
  }
  // No JWS extension is implemented, so a token that marks one as critical is refused.
  if (header.contains("crit")) {
    return Outcome::Malformed;
  }
  std::string_view kid;
  auto kid_it = header.find("kid");
  if (kid_it != header.end()) {
    if (!kid_it->is_string()) {
      return Outcome::Malformed;
    }
    kid = kid_it->get_ref<const std::string&>();
  }
  Json payload;
  if (!base64UrlDecode(payload_b64, scratch.payload) || !parseObject(scratch.payload, payload) ||
      !base64UrlDecode(sig_b64, scratch.signature) || scratch.signature.empty()) {
    return Outcome::Malformed;
  }

  // A token that names a key (kid) is verified with that key only: a kid that the set does not
  // hold is a signature failure, never a fallback to the other keys. A token without a kid (or
  // with an empty one) may be verified by any key of the type and algorithm it needs.
  const KeyType type = keyTypeFor(alg);
  const std::string_view signed_part = token.substr(0, dot2);
  bool verified = false;
  if (keys != nullptr) {
    for (const Jwk& k : keys->keys) {
      if ((kid.empty() || k.kid == kid) && k.type == type && (!k.has_alg || k.alg == alg) &&
          verifySignature(alg, k, signed_part, scratch.signature)) {
        verified = true;
        break;
      }
    }
  }
  if (!verified) {
    return Outcome::Signature;
  }

  bool malformed = false;
  numericDate(payload, "exp", out.exp, malformed);
  numericDate(payload, "nbf", out.nbf, malformed);
  if (malformed) {
    return Outcome::Malformed;
  }
  const Outcome time = checkTime(p, out.exp, out.nbf, now_s);
  if (time != Outcome::Ok) {
    return time;
  }
  if (p.has_issuer) {
    auto iss = payload.find("iss");
    if (iss == payload.end() || !iss->is_string() ||
        iss->get_ref<const std::string&>() != p.issuer) {
      return Outcome::Issuer;
    }
  }
  if (!p.audiences.empty()) {
    auto aud = payload.find("aud");
    bool match = false;
    if (aud != payload.end()) {
      auto accepted = [&](const Json& a) {
        if (!a.is_string()) {
          return false;
        }
        for (const std::string& want : p.audiences) {
          if (a.get_ref<const std::string&>() == want) {
            return true;
          }
        }
        return false;
      };
      if (aud->is_array()) {
        for (const Json& a : *aud) {
          match = match || accepted(a);
        }
      } else {
        match = accepted(*aud);
      }
    }
    if (!match) {
      return Outcome::Audience;
    }
  }

  out.payload_offset = dot1 + 1;
  out.payload_len = payload_b64.size();
  out.claims.resize(p.claim_to_headers.size());
  for (size_t i = 0; i < p.claim_to_headers.size(); i++) {
    const Json* v = findClaim(payload, p.claim_to_headers[i]);
    out.claims[i].first = v != nullptr && claimValue(*v, out.claims[i].second);
  }
  return Outcome::Ok;
}

} // namespace sluice::filters::jwt_authn
