// JWKS parsing (filters/jwt_authn/jwks.*): a document as an inline config value (strict: every
// bad key is an error) and as fetched from a remote jwks_uri (lenient: bad keys are skipped).
// Every key that loads is then used once to check a signature, so a half-built key is caught.

#include "filters/jwt_authn/jwks.h"
#include "filters/jwt_authn/token.h"

#include <cstdint>
#include <string_view>

namespace jwt = sluice::filters::jwt_authn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // The remote fetch path parses with exceptions off, exactly like this.
  const nlohmann::json doc = nlohmann::json::parse(in.begin(), in.end(), nullptr, false);
  if (doc.is_discarded()) {
    return 0;
  }
  for (bool strict : {true, false}) {
    std::vector<jwt::JwksError> errors;
    std::shared_ptr<const jwt::KeySet> keys = jwt::parseJwks(doc, strict, errors);
    if (keys == nullptr) {
      if (errors.empty()) {
        __builtin_trap(); // a refusal always says why
      }
      continue;
    }
    if (strict && !errors.empty()) {
      __builtin_trap(); // strict: a key set only without errors
    }
    static const std::string kSig(64, 'x');
    for (const jwt::Jwk& k : keys->keys) {
      for (size_t a = 0; a < jwt::kAlgCount; a++) {
        auto alg = static_cast<jwt::Alg>(a);
        if (jwt::keyTypeFor(alg) == k.type && (!k.has_alg || k.alg == alg)) {
          (void)jwt::verifySignature(alg, k, "header.payload", kSig);
        }
      }
    }
  }
  return 0;
}
