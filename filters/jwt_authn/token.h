#pragma once

// JWS compact tokens (RFC 7515/7519): parsing, signature verification with BoringSSL, and the
// registered-claim checks. Runs on a worker, only on a token cache miss.

#include "filters/jwt_authn/config.h"
#include "filters/jwt_authn/jwks.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filters::jwt_authn {

// The verdict on a request. Everything after Ok is a denial reason with its own metric label.
enum class Outcome : uint8_t {
  Ok,
  Missing,
  Malformed,
  Signature,
  Expired,
  NotYetValid,
  Issuer,
  Audience,
  Algorithm
};
constexpr size_t kReasonCount = 8;
// Metric label of a denial ("missing", ...); index = Outcome - 1.
const char* reasonName(Outcome outcome);
inline size_t reasonIndex(Outcome outcome) {
  return static_cast<size_t>(outcome) - 1;
}

// What a verified token leaves behind: enough to re-check time and to set the headers.
struct VerifiedToken {
  double exp = std::numeric_limits<double>::infinity();
  double nbf = -std::numeric_limits<double>::infinity();
  size_t payload_offset = 0; // the payload segment inside the token
  size_t payload_len = 0;
  // One per claim_to_headers entry: present (string, number or boolean claim) and its value.
  std::vector<std::pair<bool, std::string>> claims;
};

// Reusable decode buffers (per worker).
struct VerifyScratch {
  std::string header;
  std::string payload;
  std::string signature;
};

// Full verification of `token` for provider `p` with `keys` (may be null: no key yet) at wall
// time `now_s` (seconds since the epoch).
Outcome verifyToken(const Provider& p, const KeySet* keys, std::string_view token, double now_s,
                    VerifyScratch& scratch, VerifiedToken& out);

// The time checks alone (exp with clock skew, nbf with clock skew), for cached tokens.
inline Outcome checkTime(const Provider& p, double exp, double nbf, double now_s) {
  if (now_s >= exp + p.clock_skew_s) {
    return Outcome::Expired;
  }
  if (now_s + p.clock_skew_s < nbf) {
    return Outcome::NotYetValid;
  }
  return Outcome::Ok;
}

// Whether `sig` is a valid `alg` signature of `data` under `key` (key type already checked).
bool verifySignature(Alg alg, const Jwk& key, std::string_view data, std::string_view sig);

} // namespace sluice::filters::jwt_authn
