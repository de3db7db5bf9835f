// /config_dump redaction of secrets that filter configs carry: a jwt_authn inline JWKS holds the
// HS256 secret as an oct JWK's "k" (and a private key pasted by mistake its "d", "p", ...).

#include "core/config/config.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace sluice::config {
namespace {

TEST_CASE("redactedDump: JWK secrets inside filter configs are redacted", "[config]") {
  Config c;
  c.raw_json = R"({"listeners": [{"name": "web", "filters": [{"type": "jwt_authn", "config": {
      "providers": [{"name": "idp", "algorithms": ["HS256", "RS256"], "jwks": {"inline": {"keys": [
        {"kty": "oct", "kid": "h", "k": "c2VjcmV0LWhtYWMta2V5"},
        {"kty": "RSA", "kid": "r", "n": "AQAB-modulus", "e": "AQAB", "d": "private-exponent",
         "p": "prime-1", "q": "prime-2", "dp": "x", "dq": "y", "qi": "z"}]}}}],
      "rules": [{"match": {"prefix": "/"}, "requires": "idp"}]}}]}]})";
  const std::string dump = redactedDump(c);
  CHECK(dump.find("c2VjcmV0LWhtYWMta2V5") == std::string::npos);
  CHECK(dump.find("private-exponent") == std::string::npos);
  CHECK(dump.find("prime-1") == std::string::npos);
  const auto doc = nlohmann::json::parse(dump);
  const auto& keys =
      doc["listeners"][0]["filters"][0]["config"]["providers"][0]["jwks"]["inline"]["keys"];
  CHECK(keys[0]["k"] == "[redacted]");
  CHECK(keys[0]["kid"] == "h");
  // Public parts stay readable.
  CHECK(keys[1]["n"] == "AQAB-modulus");
  CHECK(keys[1]["e"] == "AQAB");
  CHECK(keys[1]["d"] == "[redacted]");
}

} // namespace
} // namespace sluice::config
