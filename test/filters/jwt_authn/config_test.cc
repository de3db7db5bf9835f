#include "test/filters/jwt_authn/harness.h"

#include <catch2/catch.hpp>

namespace sluice::testing::jwt {
namespace {

std::string errorsOf(const FakeConfigCtx& ctx) {
  std::string s;
  for (const auto& [p, m] : ctx.errors) {
    s += p + ": " + m + "\n";
  }
  return s;
}

TEST_CASE("jwt_authn config: a full config loads", "[filter][jwt_authn]") {
  Harness h;
  Json p = provider({{"from_headers", {{{"name", "x-token"}, {"prefix", "JWT "}}}},
                     {"from_query", {"access_token"}},
                     {"clock_skew_ms", 1000},
                     {"forward_payload_header", "x-jwt-payload"},
                     {"claim_to_headers", {{{"claim", "sub"}, {"header", "x-user"}}}}});
  REQUIRE(h.load(config(p)));
  INFO(errorsOf(h.ctx));
  CHECK(h.ctx.errors.empty());
}

TEST_CASE("jwt_authn config: every mistake is an error at its JSON pointer",
          "[filter][jwt_authn]") {
  Harness h;
  struct Case {
    const char* what;
    Json config;
    const char* pointer;
  };
  Json bad_jwk = TestKeys::get().jwks();
  bad_jwk["keys"][0]["n"] = "!!not base64!!";
  Json bad_kty = TestKeys::get().jwks();
  bad_kty["keys"][1]["kty"] = "DSA";
  Json short_ec = TestKeys::get().jwks();
  short_ec["keys"][1]["x"] = std::string(44, 'A'); // 33 bytes: longer than a P-256 coordinate
  const std::vector<Case> cases = {
      {"unknown algorithm", config(provider({{"algorithms", {"RS256", "XS999"}}})),
       "/providers/0/algorithms/1"},
      {"alg none is not an algorithm", config(provider({{"algorithms", {"none"}}})),
       "/providers/0/algorithms/0"},
      {"empty algorithms", config(provider({{"algorithms", Json::array()}})),
       "/providers/0/algorithms"},
      {"missing algorithms", config(provider({{"algorithms", nullptr}})),
       "/providers/0/algorithms"},
      {"empty audiences", config(provider({{"audiences", Json::array()}})),
       "/providers/0/audiences"},
      {"missing name", config(provider({{"name", nullptr}})), "/providers/0/name"},
      {"missing jwks", config(provider({{"jwks", nullptr}})), "/providers/0/jwks"},
      {"two key sources",
       config(provider({{"jwks", {{"file", "a.json"}, {"cluster", "idp_cluster"}}}})),
       "/providers/0/jwks"},
      {"unreadable JWKS file", config(provider({{"jwks", {{"file", "/nonexistent/jwks.json"}}}})),
       "/providers/0/jwks/file"},
      {"invalid JWK", config(provider({{"jwks", {{"inline", bad_jwk}}}})),
       "/providers/0/jwks/inline/keys/0/n"},
      {"unsupported kty", config(provider({{"jwks", {{"inline", bad_kty}}}})),
       "/providers/0/jwks/inline/keys/1/kty"},
      {"EC coordinate longer than the curve's",
       config(provider({{"jwks", {{"inline", short_ec}}}})), "/providers/0/jwks/inline/keys/1/x"},
      {"JWKS without keys", config(provider({{"jwks", {{"inline", Json::object()}}}})),
       "/providers/0/jwks/inline/keys"},
      {"unknown cluster", config(provider({{"jwks", {{"cluster", "nope"}}}})),
       "/providers/0/jwks/cluster"},
      {"cache_ms too small",
       config(provider({{"jwks", {{"cluster", "idp_cluster"}, {"cache_ms", 1}}}})),
       "/providers/0/jwks/cache_ms"},
      {"path without cluster",
       config(provider({{"jwks", {{"inline", TestKeys::get().jwks()}, {"path", "/x"}}}})),
       "/providers/0/jwks/path"},
      {"unknown provider key", config(provider({{"audience", "api"}})), "/providers/0/audience"},
      {"bad header name", config(provider({{"forward_payload_header", "x y"}})),
       "/providers/0/forward_payload_header"},
      {"claim header without claim",
       config(provider({{"claim_to_headers", {{{"header", "x-user"}}}}})),
       "/providers/0/claim_to_headers/0/claim"},
      {"bad claim path",
       config(provider({{"claim_to_headers", {{{"claim", "a..b"}, {"header", "x-user"}}}}})),
       "/providers/0/claim_to_headers/0/claim"},
      {"negative skew", config(provider({{"clock_skew_ms", -1}})), "/providers/0/clock_skew_ms"},
      {"unknown provider in rules",
       config(provider(), Json::array({Json{{"match", {{"prefix", "/"}}}, {"requires", "other"}}})),
       "/rules/0/requires"},
      {"rule without match", config(provider(), Json::array({Json{{"requires", "idp"}}})),
       "/rules/0/match"},
      {"bad rule match",
       config(provider(), Json::array({Json{{"match", {{"prefix", 3}}}, {"requires", "idp"}}})),
       "/rules/0/match/prefix"},
      {"no providers", Json{{"providers", Json::array()}, {"rules", {{{"match", Json::object()}}}}},
       "/providers"},
      {"no rules", Json{{"providers", {provider()}}}, "/rules"},
      {"unknown top-level key",
       Json{{"providers", {provider()}}, {"rules", {{{"match", Json::object()}}}}, {"cache", 1}},
       "/cache"},
      {"duplicate provider",
       Json{{"providers", {provider(), provider()}}, {"rules", {{{"match", Json::object()}}}}},
       "/providers/1/name"},
      {"keys that fit no listed algorithm",
       config(provider(
           {{"algorithms", {"ES384"}},
            {"jwks",
             {{"inline", {{"keys", {TestKeys::rsaJwk(TestKeys::get().rsa.get(), "rsa")}}}}}}})),
       "/providers/0/jwks"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK_FALSE(h.load(c.config));
    INFO(errorsOf(h.ctx));
    CHECK(h.ctx.hasError(c.pointer));
  }
}

TEST_CASE("jwt_authn config: JWKS file resolved against the config folder", "[filter][jwt_authn]") {
  TempDir dir;
  Harness h;
  h.ctx.base_dir = dir.path();
  dir.write("jwks.json", TestKeys::get().jwks().dump());
  REQUIRE(h.load(config(provider({{"jwks", {{"file", "jwks.json"}}}}))));
  CHECK_FALSE(h.bearer(mint("RS256")).denied());

  dir.write("bad.json", "{\"keys\": [{\"kty\": \"RSA\", \"n\": 5}]}");
  CHECK_FALSE(h.load(config(provider({{"jwks", {{"file", "bad.json"}}}}))));
  CHECK(h.ctx.hasError("/providers/0/jwks/file"));
  dir.write("notjson.json", "keys");
  CHECK_FALSE(h.load(config(provider({{"jwks", {{"file", "notjson.json"}}}}))));
  CHECK(h.ctx.hasError("/providers/0/jwks/file"));
}

TEST_CASE("jwt_authn config: the deny metric has every reason, defined at load",
          "[filter][jwt_authn]") {
  Harness h;
  REQUIRE(h.load(config()));
  for (const char* reason : {"missing", "malformed", "signature", "expired", "not_yet_valid",
                             "issuer", "audience", "algorithm"}) {
    INFO(reason);
    CHECK(h.denied(reason) == 0);
  }
  bool filter_label = false;
  for (const FakeMetric& m : h.host.metrics()) {
    filter_label = filter_label || (m.labels.size() == 2 && m.labels[0].first == "filter" &&
                                    m.labels[0].second == "jwt");
  }
  CHECK(filter_label);
}

} // namespace
} // namespace sluice::testing::jwt
