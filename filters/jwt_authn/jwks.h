#pragma once

// JSON Web Keys (RFC 7517) turned into BoringSSL keys once, and the JWS algorithms (RFC 7518)
// this filter verifies. A KeySet is immutable once built and may be shared by every worker.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/base.h>

namespace sluice::filters::jwt_authn {

enum class Alg : uint8_t { RS256, RS384, RS512, PS256, ES256, ES384, EdDSA, HS256 };
constexpr size_t kAlgCount = 8;

// "RS256" -> Alg; false for anything else ("none" included).
bool parseAlg(std::string_view name, Alg& out);
const char* algName(Alg alg);
constexpr uint32_t algBit(Alg alg) {
  return 1u << static_cast<uint32_t>(alg);
}

enum class KeyType : uint8_t { Rsa, EcP256, EcP384, Ed25519, Oct };

// The key type an algorithm needs: a key of another type is never tried (no HS/RS confusion).
KeyType keyTypeFor(Alg alg);

struct Jwk {
  std::string kid; // empty if the JWK has none
  KeyType type = KeyType::Rsa;
  bool has_alg = false; // the JWK names the one algorithm it may be used with
  Alg alg = Alg::RS256;
  bssl::UniquePtr<EVP_PKEY> pkey; // RSA and EC keys
  std::string raw;                // Ed25519 public key (32 bytes) or the oct secret
};

struct KeySet {
  std::vector<Jwk> keys;
};

// Builds one key from a JWK object. On failure returns false with `error` naming the problem
// and `field` the offending member ("" for the object itself). A key for encryption
// ("use": "enc") is `skipped` (true, no key).
bool parseJwk(const nlohmann::json& jwk, Jwk& out, bool& skipped, std::string& field,
              std::string& error);

// A JWKS document {"keys": [...]}. Config-time callers (strict) get every invalid key as an
// error (pointer relative to the document); a fetched document (lenient) skips invalid keys and
// fails only when no usable key remains.
struct JwksError {
  std::string pointer;
  std::string message;
};
std::shared_ptr<const KeySet> parseJwks(const nlohmann::json& doc, bool strict,
                                        std::vector<JwksError>& errors);

} // namespace sluice::filters::jwt_authn
