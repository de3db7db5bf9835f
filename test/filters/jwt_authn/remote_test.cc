#include "test/filters/jwt_authn/harness.h"

#include <catch2/catch.hpp>

namespace sluice::testing::jwt {
namespace {

Json remoteConfig(uint64_t cache_ms = 60000) {
  return config(provider(
      {{"jwks", {{"cluster", "idp_cluster"}, {"path", "/keys.json"}, {"cache_ms", cache_ms}}}}));
}

double fetchFailures(const Harness& h) {
  return h.host.metric("sluice_jwt_authn_jwks_fetch_failures_total");
}

TEST_CASE("jwt_authn remote JWKS: fetched in the background, requests wait for the first set",
          "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig()));
  FakeWorker& w = h.worker();
  // The first fetch starts from a worker timer, not from a request.
  CHECK(h.host.http_calls.empty());
  CHECK(w.fireTimers() == 1);
  REQUIRE(h.host.http_calls.size() == 1);
  CHECK(h.host.http_calls[0].cluster == "idp_cluster");
  CHECK(h.host.http_calls[0].path == "/keys.json");
  CHECK(h.host.http_calls[0].method == "GET");
  CHECK(h.host.http_calls[0].stream == nullptr);

  const std::string token = mint("RS256");
  Result waiting = h.start("/api", {{"authorization", "Bearer " + token}});
  CHECK(waiting.status == SLUICE_STATUS_STOP);
  CHECK_FALSE(waiting.denied());
  Result waiting_bad =
      h.start("/api", {{"authorization", "Bearer " + mint("RS256", defaultClaims(), "rsa2")}});
  CHECK(waiting_bad.status == SLUICE_STATUS_STOP);
  // No second fetch while one is in flight.
  CHECK(h.host.http_calls.size() == 1);

  REQUIRE(h.host.completeHttpCall(0, 200, TestKeys::get().jwks().dump()));
  CHECK(w.runPosted() == 2);
  CHECK(waiting.stream->resumed == 1);
  CHECK_FALSE(waiting.denied());
  CHECK(waiting_bad.stream->resumed == 0);
  CHECK(waiting_bad.code() == 401);
  h.finish(waiting);
  h.finish(waiting_bad);

  // Loaded: requests are answered at once, and no fetch happens on the request path.
  Result now = h.bearer(token);
  CHECK(now.status == SLUICE_STATUS_CONTINUE);
  CHECK(h.host.http_calls.size() == 1);
  // The refresh timer is armed.
  CHECK(w.timers.size() == 1);
  CHECK(w.timers.begin()->second.timeout_ms == 60000);
}

TEST_CASE("jwt_authn remote JWKS: readiness is held until the first fetch ends",
          "[filter][jwt_authn]") {
  for (int status : {200, 503}) {
    Harness h;
    h.host.accept_http_calls = true;
    REQUIRE(h.load(remoteConfig()));
    CHECK(h.host.ready_holds.empty()); // taken by the worker state, not the config
    FakeWorker& w = h.worker();
    REQUIRE(h.host.ready_holds.size() == 1);
    CHECK(h.host.ready_holds.begin()->second.find("first JWKS fetch of provider") !=
          std::string::npos);
    CHECK(h.host.ready_holds.begin()->second.find("idp_cluster") != std::string::npos);
    w.fireTimers();
    CHECK(h.host.ready_holds.size() == 1); // still in flight
    // Released when the fetch ends, whether it brought keys or failed: a failing key server
    // must not keep the process unready forever.
    REQUIRE(h.host.completeHttpCall(0, status, TestKeys::get().jwks().dump()));
    CHECK(h.host.ready_holds.empty());
  }
}

TEST_CASE(
    "jwt_authn remote JWKS: a worker state destroyed before its first fetch releases its hold",
    "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig()));
  h.worker();
  CHECK(h.host.ready_holds.size() == 1);
  REQUIRE(h.load(config())); // the old config and its worker state are destroyed
  CHECK(h.host.ready_holds.empty());
}

TEST_CASE("jwt_authn with static keys holds no readiness", "[filter][jwt_authn]") {
  Harness h;
  REQUIRE(h.load(config()));
  h.worker();
  CHECK(h.host.ready_holds.empty());
}

TEST_CASE("jwt_authn remote JWKS: failures keep the last good set and are counted",
          "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig(1000)));
  FakeWorker& w = h.worker();
  w.fireTimers();
  REQUIRE(h.host.completeHttpCall(0, 200, TestKeys::get().jwks().dump()));
  const std::string token = mint("ES256");
  CHECK_FALSE(h.bearer(token).denied());
  CHECK(fetchFailures(h) == 0);

  struct Failure {
    uint32_t status;
    std::string body;
    std::string error;
  };
  const std::vector<Failure> failures = {{200, "garbage", ""},
                                         {200, "{\"keys\": []}", ""},
                                         {200, "{\"keys\": [{\"kty\": \"RSA\"}]}", ""},
                                         {500, "oops", ""},
                                         {0, "", "timeout"},
                                         {0, "", "connect_failure"}};
  for (size_t i = 0; i < failures.size(); i++) {
    INFO(i);
    REQUIRE(w.fireTimers() == 1);
    REQUIRE(h.host.http_calls.size() == i + 2);
    REQUIRE(
        h.host.completeHttpCall(i + 1, failures[i].status, failures[i].body, failures[i].error));
    CHECK(fetchFailures(h) == static_cast<double>(i + 1));
    CHECK_FALSE(h.bearer(token).denied());
    CHECK_FALSE(h.bearer(mint("EdDSA")).denied());
  }
  bool logged = false;
  for (const auto& [level, line] : h.host.logs()) {
    logged = logged || (level == SLUICE_LOG_WARN &&
                        line.find("keeping the last good key set") != std::string::npos);
  }
  CHECK(logged);
}

TEST_CASE("jwt_authn remote JWKS: a rotated key set replaces the old one", "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig(1000)));
  FakeWorker& w = h.worker();
  w.fireTimers();
  REQUIRE(h.host.completeHttpCall(0, 200, TestKeys::get().jwks().dump()));
  const std::string old_token = mint("RS256");
  CHECK_FALSE(h.bearer(old_token).denied()); // now cached

  // The same document again: nothing changes.
  w.fireTimers();
  REQUIRE(h.host.completeHttpCall(1, 200, TestKeys::get().jwks().dump()));
  CHECK_FALSE(h.bearer(old_token).denied());

  // Rotation: only rsa2 remains. The cached verification of the old token is not used.
  Json rotated{{"keys", {TestKeys::rsaJwk(TestKeys::get().rsa2.get(), "rsa")}}};
  w.fireTimers();
  REQUIRE(h.host.completeHttpCall(2, 200, rotated.dump()));
  CHECK(h.bearer(old_token).code() == 401);
  CHECK(h.denied("signature") == 1);
  CHECK_FALSE(h.bearer(mint("RS256", defaultClaims(), "rsa2")).denied());
}

TEST_CASE("jwt_authn remote JWKS: waiting is bounded", "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig()));
  FakeWorker& w = h.worker();
  w.fireTimers();
  Result r = h.start("/api", {{"authorization", "Bearer " + mint("RS256")}});
  CHECK(r.status == SLUICE_STATUS_STOP);
  // The wait timer belongs to the stream.
  REQUIRE(w.timers.size() == 1);
  CHECK(w.timers.begin()->second.timeout_ms == filters::jwt_authn::kKeyWaitMs);
  w.fireTimers();
  CHECK(r.code() == 401);
  CHECK(r.replyHeader("www-authenticate") == "Bearer realm=\"idp\", error=\"invalid_token\"");
  h.finish(r);
  // Keys arriving later do not touch the finished stream; new requests pass.
  REQUIRE(h.host.completeHttpCall(0, 200, TestKeys::get().jwks().dump()));
  CHECK(w.runPosted() == 0);
  CHECK_FALSE(h.bearer(mint("RS256")).denied());
}

TEST_CASE("jwt_authn remote JWKS: a failed first fetch answers waiting requests",
          "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig()));
  FakeWorker& w = h.worker();
  w.fireTimers();
  Result r = h.start("/api", {{"authorization", "Bearer " + mint("RS256")}});
  REQUIRE(h.host.completeHttpCall(0, 503, ""));
  CHECK(fetchFailures(h) == 1);
  CHECK(w.runPosted() == 1);
  CHECK(r.code() == 401);
  h.finish(r);
  // A quick retry is armed while no set was ever loaded.
  bool retry = false;
  for (const auto& [id, t] : w.timers) {
    retry = retry || t.timeout_ms == filters::jwt_authn::kFirstFetchRetryMs;
  }
  CHECK(retry);
}

TEST_CASE("jwt_authn remote JWKS: a request that waits and ends early leaves no trace",
          "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig()));
  FakeWorker& w = h.worker();
  w.fireTimers();
  Result r = h.start("/api", {{"authorization", "Bearer " + mint("RS256")}});
  h.finish(r); // client went away
  REQUIRE(h.host.completeHttpCall(0, 200, TestKeys::get().jwks().dump()));
  CHECK(w.runPosted() == 0);
  // The recycled stream object works for the next request.
  CHECK_FALSE(h.bearer(mint("RS256")).denied());
}

TEST_CASE("jwt_authn remote JWKS: a fetch that cannot start counts as a failure",
          "[filter][jwt_authn]") {
  Harness h; // accept_http_calls stays false: every call is refused
  REQUIRE(h.load(remoteConfig()));
  FakeWorker& w = h.worker();
  w.fireTimers();
  CHECK(fetchFailures(h) == 1);
  Result r = h.start("/api", {{"authorization", "Bearer " + mint("RS256")}});
  CHECK(fetchFailures(h) == 2); // the waiting request asked for a fetch right away
  CHECK(w.runPosted() == 1);
  CHECK(r.code() == 401);
  h.finish(r);
}

TEST_CASE("jwt_authn remote JWKS: worker shutdown cancels the fetch and the timer",
          "[filter][jwt_authn]") {
  Harness h;
  h.host.accept_http_calls = true;
  REQUIRE(h.load(remoteConfig()));
  FakeWorker& w = h.worker();
  w.fireTimers();
  REQUIRE(h.host.pendingHttpCalls() == 1);
  h.destroyWorker();
  CHECK(h.host.pendingHttpCalls() == 0);
  CHECK(w.timers.empty());
}

} // namespace
} // namespace sluice::testing::jwt
