#include "test/filters/jwt_authn/harness.h"

#include <catch2/catch.hpp>

namespace sluice::testing::jwt {
namespace {

// Replaces one character of a base64url segment so the signature no longer matches.
std::string tamper(std::string token, size_t pos) {
  token[pos] = token[pos] == 'A' ? 'B' : 'A';
  return token;
}

std::string segment(const Json& j) {
  return b64(j.dump());
}

TEST_CASE("jwt_authn: a valid token passes for every algorithm", "[filter][jwt_authn]") {
  const std::string alg =
      GENERATE("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256");
  INFO(alg);
  Harness h;
  REQUIRE(h.load(config()));
  Result r = h.bearer(mint(alg));
  CHECK(r.status == SLUICE_STATUS_CONTINUE);
  CHECK_FALSE(r.denied());
  // Without a kid the keys of the right type are tried.
  CHECK_FALSE(h.bearer(mint(alg, defaultClaims(), "", "")).denied());
  // A tampered signature is refused.
  const std::string token = mint(alg);
  Result bad = h.bearer(tamper(token, token.rfind('.') + 2));
  CHECK(bad.code() == 401);
  CHECK(h.denied("signature") == 1);
  // A kid naming no key in the set is refused, even though a key of the right type would verify.
  Result unknown = h.bearer(mint(alg, defaultClaims(), "", "unknown-kid"));
  CHECK(unknown.code() == 401);
  CHECK(h.denied("signature") == 2);
}

TEST_CASE("jwt_authn: a token with a kid is verified only with the key of that kid",
          "[filter][jwt_authn]") {
  // Two RSA keys: "rsa" and "rsa2".
  const TestKeys& k = TestKeys::get();
  Json jwks = k.jwks();
  jwks["keys"].push_back(TestKeys::rsaJwk(k.rsa2.get(), "rsa2"));
  Harness h;
  REQUIRE(h.load(config(provider({{"jwks", {{"inline", jwks}}}}))));

  SECTION("the kid names the signing key") {
    CHECK_FALSE(h.bearer(mint("RS256", defaultClaims(), "rsa", "rsa")).denied());
    CHECK_FALSE(h.bearer(mint("RS256", defaultClaims(), "rsa2", "rsa2")).denied());
  }
  SECTION("signed by a key of the set, but the kid names another key of the set") {
    Result r = h.bearer(mint("RS256", defaultClaims(), "rsa2", "rsa"));
    CHECK(r.code() == 401);
    CHECK(r.replyHeader("www-authenticate") == "Bearer realm=\"idp\", error=\"invalid_token\"");
    CHECK(h.bearer(mint("RS256", defaultClaims(), "rsa", "rsa2")).code() == 401);
    CHECK(h.denied("signature") == 2);
  }
  SECTION("signed by a key of the set, but the kid names no key of the set") {
    CHECK(h.bearer(mint("RS256", defaultClaims(), "rsa2", "gone")).code() == 401);
    CHECK(h.bearer(mint("ES256", defaultClaims(), "", "gone")).code() == 401);
    CHECK(h.denied("signature") == 2);
  }
  SECTION("without a kid, every key of the token's type may verify it") {
    CHECK_FALSE(h.bearer(mint("RS256", defaultClaims(), "rsa", "")).denied());
    CHECK_FALSE(h.bearer(mint("RS256", defaultClaims(), "rsa2", "")).denied());
    CHECK_FALSE(h.bearer(mint("PS256", defaultClaims(), "rsa2", "")).denied());
    CHECK_FALSE(h.bearer(mint("HS256", defaultClaims(), "", "")).denied());
    CHECK(h.denied("signature") == 0);
  }
  SECTION("without a kid, a key outside the set still fails") {
    REQUIRE(h.load(config()));
    CHECK(h.bearer(mint("RS256", defaultClaims(), "rsa2", "")).code() == 401);
    CHECK(h.denied("signature") == 1);
  }
}

TEST_CASE("jwt_authn: rejections answer 401 with a Bearer challenge", "[filter][jwt_authn]") {
  Harness h;
  REQUIRE(h.load(config(provider({{"clock_skew_ms", 60000}}))));
  const std::string invalid = "Bearer realm=\"idp\", error=\"invalid_token\"";

  SECTION("missing token") {
    Result r = h.request("/api");
    CHECK(r.status == SLUICE_STATUS_STOP);
    CHECK(r.code() == 401);
    CHECK(r.replyHeader("www-authenticate") == "Bearer realm=\"idp\"");
    CHECK(h.denied("missing") == 1);
    // Another scheme is not a bearer token.
    CHECK(h.request("/api", {{"authorization", "Basic dXNlcjpwdw=="}}).code() == 401);
    CHECK(h.denied("missing") == 2);
  }
  SECTION("alg none") {
    const std::string token = segment({{"alg", "none"}}) + "." + segment(defaultClaims()) + ".";
    Result r = h.bearer(token);
    CHECK(r.code() == 401);
    CHECK(r.replyHeader("www-authenticate") == invalid);
    CHECK(h.denied("algorithm") == 1);
    // Even with a signature segment.
    CHECK(h.bearer(token + "AAAA").code() == 401);
    CHECK(h.denied("algorithm") == 2);
  }
  SECTION("algorithm the provider does not list") {
    REQUIRE(h.load(config(provider({{"algorithms", {"RS256"}}}))));
    CHECK(h.bearer(mint("ES256")).code() == 401);
    CHECK(h.bearer(mint("HS256")).code() == 401);
    CHECK(h.denied("algorithm") == 2);
    CHECK_FALSE(h.bearer(mint("RS256")).denied());
  }
  SECTION("HS/RS confusion: an HS256 token keyed with the RSA public key") {
    const RSA* rsa = EVP_PKEY_get0_RSA(TestKeys::get().rsa.get());
    const std::string public_bytes = bnBytes(RSA_get0_n(rsa));
    // Provider lists only RS256: refused as an algorithm.
    REQUIRE(h.load(config(provider({{"algorithms", {"RS256"}}}))));
    CHECK(h.bearer(mint("HS256", defaultClaims(), public_bytes, "rsa")).code() == 401);
    CHECK(h.denied("algorithm") == 1);
    // Provider lists both: the RSA key is never used as an HMAC secret.
    REQUIRE(h.load(config(provider({{"algorithms", {"RS256", "HS256"}}}))));
    CHECK(h.bearer(mint("HS256", defaultClaims(), public_bytes, "rsa")).code() == 401);
    CHECK(h.bearer(mint("HS256", defaultClaims(), public_bytes, "")).code() == 401);
    CHECK(h.denied("signature") == 2);
    // And an RS256 token never verifies against the oct key named by its kid.
    CHECK(h.bearer(mint("RS256", defaultClaims(), "rsa2", "hmac")).code() == 401);
    CHECK(h.denied("signature") == 3);
  }
  SECTION("signed by a key not in the JWKS") {
    CHECK(h.bearer(mint("RS256", defaultClaims(), "rsa2")).code() == 401);
    CHECK(h.denied("signature") == 1);
  }
  SECTION("expired, with clock skew") {
    Json c = defaultClaims();
    c["exp"] = kNow - 30; // within the 60 s skew
    CHECK_FALSE(h.bearer(mint("RS256", c)).denied());
    c["exp"] = kNow - 61;
    Result r = h.bearer(mint("RS256", c));
    CHECK(r.code() == 401);
    CHECK(r.replyHeader("www-authenticate") == invalid);
    CHECK(h.denied("expired") == 1);
    REQUIRE(h.load(config(provider({{"clock_skew_ms", 0}}))));
    c["exp"] = kNow - 1;
    CHECK(h.bearer(mint("ES256", c)).code() == 401);
    CHECK(h.denied("expired") == 2); // the fake host keeps counters across loads
  }
  SECTION("not yet valid") {
    Json c = defaultClaims();
    c["nbf"] = kNow + 30;
    CHECK_FALSE(h.bearer(mint("RS256", c)).denied());
    c["nbf"] = kNow + 120;
    CHECK(h.bearer(mint("RS256", c)).code() == 401);
    CHECK(h.denied("not_yet_valid") == 1);
    // Nothing of the refused token carries over to the next one (without nbf or exp).
    Json plain = defaultClaims();
    plain.erase("exp");
    CHECK_FALSE(h.bearer(mint("RS256", plain)).denied());
    c["exp"] = kNow - 3600;
    c.erase("nbf");
    CHECK(h.bearer(mint("RS256", c)).code() == 401);
    CHECK_FALSE(h.bearer(mint("ES256", plain)).denied());
    CHECK(h.denied("not_yet_valid") == 1);
  }
  SECTION("wrong issuer") {
    Json c = defaultClaims();
    c["iss"] = "https://evil.example.com/";
    CHECK(h.bearer(mint("EdDSA", c)).code() == 401);
    c.erase("iss");
    CHECK(h.bearer(mint("EdDSA", c)).code() == 401);
    CHECK(h.denied("issuer") == 2);
  }
  SECTION("valid token, wrong audience: 403") {
    Json c = defaultClaims();
    c["aud"] = "other";
    Result r = h.bearer(mint("RS256", c));
    CHECK(r.code() == 403);
    CHECK(r.replyHeader("www-authenticate") ==
          "Bearer realm=\"idp\", error=\"insufficient_scope\"");
    c["aud"] = Json::array({"other", "api"});
    CHECK_FALSE(h.bearer(mint("RS256", c)).denied());
    c.erase("aud");
    CHECK(h.bearer(mint("RS256", c)).code() == 403);
    CHECK(h.denied("audience") == 2);
  }
  SECTION("malformed tokens") {
    const std::string good = mint("RS256");
    const size_t dot1 = good.find('.');
    const std::vector<std::string> bad = {
        "abc",
        "a.b",
        good + ".extra",
        "!!!." + good.substr(dot1 + 1),                                  // bad base64url header
        b64("not json") + good.substr(dot1),                             // header not JSON
        segment(Json::array({1})) + good.substr(dot1),                   // header not an object
        segment({{"typ", "JWT"}}) + good.substr(dot1),                   // no alg
        good.substr(0, dot1 + 1) + "%%%" + good.substr(good.rfind('.')), // bad payload
        good.substr(0, dot1 + 1) + b64("[]") + good.substr(good.rfind('.')),
        good.substr(0, good.rfind('.') + 1),       // empty signature
        good.substr(0, good.rfind('.') + 1) + "a", // impossible base64 length
        segment({{"alg", "RS256"}, {"crit", {"b64"}}}) + good.substr(dot1),
        good + std::string(9000, 'A'), // oversized
        std::string(9000, 'A') + "." + "B.C",
    };
    for (const std::string& t : bad) {
      INFO(t.substr(0, 80));
      Result r = h.bearer(t);
      CHECK(r.code() == 401);
      CHECK(r.replyHeader("www-authenticate") == invalid);
    }
    CHECK(h.denied("malformed") == static_cast<double>(bad.size()));
    // A non-numeric exp is malformed too (checked after the signature).
    Json c = defaultClaims();
    c["exp"] = "tomorrow";
    CHECK(h.bearer(mint("RS256", c)).code() == 401);
    CHECK(h.denied("malformed") == static_cast<double>(bad.size() + 1));
  }
  // Tokens never reach the log.
  for (const auto& [level, line] : h.host.logs()) {
    CHECK(line.find("eyJ") == std::string::npos);
  }
}

TEST_CASE("jwt_authn: rules, first match wins", "[filter][jwt_authn]") {
  Harness h;
  Json rules = Json::array(
      {Json{{"match", {{"prefix", "/public"}}}},
       Json{{"match", {{"prefix", "/api"}, {"methods", {"POST"}}}}, {"requires", "idp"}},
       Json{{"match", {{"prefix", "/api"}}}, {"requires", "idp"}}});
  REQUIRE(h.load(config(provider(), rules)));
  // A rule without `requires` does not look at tokens, even broken ones.
  CHECK_FALSE(h.request("/public/x").denied());
  CHECK_FALSE(h.request("/public/x", {{"authorization", "Bearer garbage"}}).denied());
  // No rule matches: the request passes.
  Result other = h.request("/other");
  CHECK(other.status == SLUICE_STATUS_CONTINUE);
  CHECK_FALSE(other.denied());
  CHECK(h.request("/api/x").code() == 401);
  CHECK_FALSE(h.bearer(mint("RS256"), "/api/x").denied());
  CHECK(h.denied("missing") == 1);
}

TEST_CASE("jwt_authn: token sources", "[filter][jwt_authn]") {
  Harness h;
  const std::string token = mint("ES256");
  SECTION("custom header and prefix") {
    REQUIRE(h.load(config(provider(
        {{"from_headers", {{{"name", "X-Token"}, {"prefix", "JWT "}}, {{"name", "x-raw"}}}}}))));
    CHECK_FALSE(h.request("/api", {{"x-token", "jwt " + token}}).denied());
    CHECK_FALSE(h.request("/api", {{"x-raw", token}}).denied());
    // The default header is not looked at once from_headers is given.
    CHECK(h.request("/api", {{"authorization", "Bearer " + token}}).code() == 401);
  }
  SECTION("query parameter") {
    REQUIRE(h.load(config(provider({{"from_query", {"access_token"}}}))));
    CHECK_FALSE(h.request("/api?x=1&access_token=" + token + "&y=2").denied());
    std::string encoded = token;
    encoded.replace(encoded.find('.'), 1, "%2E");
    CHECK_FALSE(h.request("/api?access_token=" + encoded).denied());
    CHECK(h.request("/api?other=" + token).code() == 401);
    CHECK(h.request("/api?access_token=%zz").code() == 401);
    CHECK(h.denied("missing") == 1);
    CHECK(h.denied("malformed") == 1);
    // Only the query when only from_query is given.
    CHECK(h.request("/api", {{"authorization", "Bearer " + token}}).code() == 401);
  }
  SECTION("default: authorization with Bearer, any case") {
    REQUIRE(h.load(config()));
    CHECK_FALSE(h.request("/api", {{"Authorization", "bearer " + token}}).denied());
  }
}

TEST_CASE("jwt_authn: payload and claims forwarded as headers", "[filter][jwt_authn]") {
  Harness h;
  REQUIRE(h.load(config(provider({{"forward_payload_header", "X-JWT-Payload"},
                                  {"claim_to_headers",
                                   {{{"claim", "sub"}, {"header", "x-user"}},
                                    {{"claim", "level"}, {"header", "x-level"}},
                                    {{"claim", "score"}, {"header", "x-score"}},
                                    {{"claim", "admin"}, {"header", "x-admin"}},
                                    {{"claim", "org.team.name"}, {"header", "x-team"}},
                                    {{"claim", "groups"}, {"header", "x-groups"}},
                                    {{"claim", "evil"}, {"header", "x-evil"}},
                                    {{"claim", "absent"}, {"header", "x-absent"}}}}}))));
  Json c = defaultClaims();
  c["level"] = 7;
  c["score"] = 2.5;
  c["admin"] = true;
  c["org"] = {{"team", {{"name", "core"}}}};
  c["groups"] = {"a", "b"};
  c["evil"] = "x\r\ninjected: 1";
  const std::string token = mint("RS256", c);
  for (int round = 0; round < 2; round++) { // the second is a cache hit
    INFO("round " << round);
    Result r = h.request("/api", {{"authorization", "Bearer " + token},
                                  {"x-user", "mallory"},
                                  {"x-absent", "forged"},
                                  {"x-evil", "forged"}});
    REQUIRE_FALSE(r.denied());
    const std::string payload =
        token.substr(token.find('.') + 1, token.rfind('.') - token.find('.') - 1);
    CHECK(r.requestHeader("x-jwt-payload") == payload);
    CHECK(r.requestHeader("x-user") == "alice");
    CHECK(r.requestHeader("x-level") == "7");
    CHECK(r.requestHeader("x-score") == "2.5");
    CHECK(r.requestHeader("x-admin") == "true");
    CHECK(r.requestHeader("x-team") == "core");
    CHECK(r.requestHeader("x-groups") == "<absent>");
    CHECK(r.requestHeader("x-evil") == "<absent>");
    CHECK(r.requestHeader("x-absent") == "<absent>");
  }
}

TEST_CASE("jwt_authn: forwarded headers cannot be forged on paths that skip verification",
          "[filter][jwt_authn]") {
  Harness h;
  Json p1 = provider({{"forward_payload_header", "x-jwt-payload"},
                      {"claim_to_headers", {{{"claim", "sub"}, {"header", "x-user"}}}}});
  Json p2 = provider(
      {{"name", "other"}, {"claim_to_headers", {{{"claim", "sub"}, {"header", "x-other-user"}}}}});
  REQUIRE(h.load(Json{{"providers", {p1, p2}},
                      {"rules",
                       {{{"match", {{"prefix", "/public"}}}},
                        {{"match", {{"prefix", "/other"}}}, {"requires", "other"}},
                        {{"match", {{"prefix", "/api"}}}, {"requires", "idp"}}}}}));
  const HeaderList forged = {
      {"x-user", "admin"}, {"x-jwt-payload", "e30"}, {"x-other-user", "root"}, {"x-kept", "1"}};
  for (const std::string path : {"/public/x", "/unmatched"}) {
    INFO(path);
    Result r = h.request(path, forged);
    CHECK_FALSE(r.denied());
    CHECK(r.requestHeader("x-user") == "<absent>");
    CHECK(r.requestHeader("x-jwt-payload") == "<absent>");
    CHECK(r.requestHeader("x-other-user") == "<absent>");
    CHECK(r.requestHeader("x-kept") == "1");
  }
  HeaderList with_token = forged;
  with_token.emplace_back("authorization", "Bearer " + mint("RS256"));
  Result r = h.request("/other", with_token);
  CHECK_FALSE(r.denied());
  CHECK(r.requestHeader("x-other-user") == "alice");
  CHECK(r.requestHeader("x-user") == "<absent>"); // set only by idp
  CHECK(r.requestHeader("x-jwt-payload") == "<absent>");
  CHECK(r.requestHeader("x-kept") == "1");
}

TEST_CASE("jwt_authn: cached tokens still expire", "[filter][jwt_authn]") {
  Harness h;
  REQUIRE(h.load(config(provider({{"clock_skew_ms", 0}}))));
  Json c = defaultClaims();
  c["exp"] = kNow + 10;
  const std::string token = mint("RS256", c);
  CHECK_FALSE(h.bearer(token, "/api", kNow).denied());
  CHECK_FALSE(h.bearer(token, "/api", kNow + 5).denied());
  CHECK(h.bearer(token, "/api", kNow + 10).code() == 401);
  CHECK(h.denied("expired") == 1);
  // Evicted, and still refused after a full verification.
  CHECK(h.bearer(token, "/api", kNow + 11).code() == 401);
  CHECK(h.denied("expired") == 2);
}

TEST_CASE("jwt_authn: the token cache is bounded and exact", "[filter][jwt_authn]") {
  using filters::jwt_authn::TokenCache;
  TokenCache cache(8);
  REQUIRE(cache.enabled());
  CHECK_FALSE(TokenCache(0).enabled());
  // 100 tokens with colliding hashes: at most 4 of one set are kept, and a hash match with a
  // different token is not a hit.
  for (int i = 0; i < 100; i++) {
    TokenCache::Entry& e = cache.slotFor(42);
    e.used = true;
    e.hash = 42;
    e.token = "token" + std::to_string(i);
  }
  int kept = 0;
  for (int i = 0; i < 100; i++) {
    kept += cache.find(42, 0, 0, "token" + std::to_string(i)) != nullptr ? 1 : 0;
  }
  CHECK(kept <= 4);
  CHECK(kept >= 1);
  CHECK(cache.find(42, 0, 0, "token99") != nullptr);
  CHECK(cache.find(42, 1, 0, "token99") == nullptr); // another provider
  CHECK(cache.find(42, 0, 1, "token99") == nullptr); // another key set
  CHECK(cache.find(43, 0, 0, "token99") == nullptr);

  Harness h;
  REQUIRE(h.load(Json{{"providers", {provider()}},
                      {"rules", {{{"match", Json::object()}, {"requires", "idp"}}}},
                      {"token_cache_entries", 0}}));
  const std::string token = mint("HS256");
  CHECK_FALSE(h.bearer(token).denied());
  CHECK_FALSE(h.bearer(token).denied());
  CHECK(h.bearer(tamper(token, token.rfind('.') + 2)).code() == 401);
}

TEST_CASE("jwt_authn: the same token under two providers is checked for each",
          "[filter][jwt_authn]") {
  Harness h;
  Json p2 = provider({{"name", "strict"}, {"audiences", {"admin"}}});
  REQUIRE(h.load(Json{{"providers", {provider(), p2}},
                      {"rules",
                       {{{"match", {{"prefix", "/admin"}}}, {"requires", "strict"}},
                        {{"match", Json::object()}, {"requires", "idp"}}}}}));
  const std::string token = mint("RS256");
  CHECK_FALSE(h.bearer(token, "/api").denied());
  Result r = h.bearer(token, "/admin");
  CHECK(r.code() == 403);
  CHECK(r.replyHeader("www-authenticate") ==
        "Bearer realm=\"strict\", error=\"insufficient_scope\"");
}

} // namespace
} // namespace sluice::testing::jwt
