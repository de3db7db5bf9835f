// JWT parsing and verification (filters/jwt_authn/token.*) against a fixed key set with one key
// of every type (RSA, EC P-256, Ed25519, oct). Two input forms:
//  - a compact token as a client sends it (seeds: one valid token per algorithm);
//  - "{header JSON}\n{payload JSON}": the harness encodes both and signs them with the oct key
//    (HS256), so the fuzzer reaches the claim checks (exp/nbf, iss, aud, claim_to_headers)
//    behind the signature.

#include "filters/jwt_authn/base64url.h"
#include "filters/jwt_authn/token.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/digest.h>
#include <openssl/hmac.h>

namespace jwt = sluice::filters::jwt_authn;

namespace {

// Public halves of test keys generated for this target (and the HS256 test secret).
constexpr std::string_view kJwks =
    R"jwks({"keys": [{"kty": "RSA", "kid": "rsa", "n": "syM3tDuaQvrO-FSHgwt2RwfmtZHStd7a3czSlTvCTO57PXUkXYNbMfAsCGeBEuhqw5BCqrWoCE0BXSHUMvfJjbS-k9aMEgG03hdX382AWnAF75s_ZkvxUJPtyg8Jvc9QDLdejAQSGbhfJjdI_DJIJe6LNPqmyZ-2PbpqEfd5Q6lLq5qGFOe1VDjgQv6nBxvex1LPlNfZ6bIlVFapzfqMCqsuexHx8nH7rbxekz149vLPI1rWwvdRvlq5tLckf1FQGssja_epzjccUSyNj8w_XlFUu7ectMw7cDmNNXeufJywp0f9VBiNvax9NRWLAbxSlzp54dY5WOfIyHp4N4vcwQ", "e": "AQAB"}, {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "OtieI98azoX5suzMUH63opGTihhtrHbK4P1FS-r7BWY", "y": "cU1z6LKvSCFoQjI2tpLPQLrpq9XlaP5b_EypYUgAeHU"}, {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "uvXDEnI5ExrRiUJkJqPrDSsC9i6QbnHR1k9_3W9cGp0"}, {"kty": "oct", "kid": "hs", "k": "ZnV6ei1oczI1Ni1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg"}]})jwks";
constexpr std::string_view kSecret = "fuzz-hs256-secret-0123456789abcdef";

jwt::Provider makeProvider() {
  jwt::Provider p;
  p.name = "fuzz";
  p.has_issuer = true;
  p.issuer = "https://issuer.example";
  p.audiences = {"api", "other"};
  for (size_t i = 0; i < jwt::kAlgCount; i++) {
    p.algorithms |= jwt::algBit(static_cast<jwt::Alg>(i));
  }
  std::vector<jwt::JwksError> errors;
  p.static_keys = jwt::parseJwks(nlohmann::json::parse(kJwks), true, errors);
  if (p.static_keys == nullptr || !errors.empty() || p.static_keys->keys.size() != 4) {
    __builtin_trap(); // the fixed key set must load
  }
  p.claim_to_headers = {{"sub", {"sub"}, "x-sub"},
                        {"realm.role", {"realm", "role"}, "x-role"},
                        {"n", {"n"}, "x-n"},
                        {"a.b.c.d", {"a", "b", "c", "d"}, "x-deep"}};
  return p;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const jwt::Provider provider = makeProvider();
  static jwt::VerifyScratch scratch;
  static jwt::VerifiedToken out;
  constexpr double kNow = 1700000000;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  std::string token;
  size_t nl = in.find('\n');
  if (!in.empty() && in[0] == '{' && nl != std::string_view::npos) {
    std::string h, pl;
    jwt::base64UrlEncode(in.substr(0, nl), h);
    jwt::base64UrlEncode(in.substr(nl + 1), pl);
    token = h + "." + pl;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    HMAC(EVP_sha256(), kSecret.data(), kSecret.size(),
         reinterpret_cast<const uint8_t*>(token.data()), token.size(), mac, &mac_len);
    std::string sig;
    jwt::base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), mac_len), sig);
    token += "." + sig;
  } else {
    token.assign(in);
  }
  jwt::Outcome o =
      jwt::verifyToken(provider, provider.static_keys.get(), token, kNow, scratch, out);
  if (o == jwt::Outcome::Ok) {
    if (out.payload_offset + out.payload_len > token.size() ||
        out.claims.size() != provider.claim_to_headers.size()) {
      __builtin_trap();
    }
    (void)jwt::checkTime(provider, out.exp, out.nbf, kNow);
  } else {
    (void)jwt::reasonName(o);
  }
  // The same token with no key yet (a remote JWKS not fetched): never verifies.
  if (jwt::verifyToken(provider, nullptr, token, kNow, scratch, out) == jwt::Outcome::Ok) {
    __builtin_trap();
  }
  return 0;
}
