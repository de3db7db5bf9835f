// The ratelimit filter (local backend) through its C ABI on the fake host: bursts, refill with
// the worker clock, keys, rule matching, headers, 429s, config errors.

#include "test/filters/ratelimit/harness.h"

#include <catch2/catch.hpp>

namespace sluice::testing {
namespace {

const char* kPerKey = R"({"rules": [{"match": {"prefix": "/api"}, "key": {"header": "x-api-key"},
  "requests_per_minute": 60, "burst": 3}], "response_headers": true})";

TEST_CASE("Ratelimit: a burst is allowed, then 429 with Retry-After", "[ratelimit]") {
  RatelimitHarness h;
  REQUIRE(h.load(kPerKey));
  for (int i = 0; i < 3; i++) {
    FakeStream s = request("/api/x", {{"x-api-key", "k1"}});
    CHECK(h.run(s) == 200);
    CHECK(headerOf(s.response_headers, "ratelimit-limit") == "3");
    CHECK(headerOf(s.response_headers, "ratelimit-remaining") == std::to_string(2 - i));
    // 1 token per second: full again after (3 - remaining) seconds.
    CHECK(headerOf(s.response_headers, "ratelimit-reset") == std::to_string(i + 1));
  }
  FakeStream s = request("/api/x", {{"x-api-key", "k1"}});
  CHECK(h.run(s) == 429);
  CHECK((s.response_flags & SLUICE_FLAG_RATE_LIMITED) != 0);
  const HeaderList* r = h.replyHeaders(s);
  REQUIRE(r != nullptr);
  CHECK(headerOf(*r, "retry-after") == "1");
  CHECK(headerOf(*r, "ratelimit-limit") == "3");
  CHECK(headerOf(*r, "ratelimit-remaining") == "0");
  CHECK(headerOf(*r, "ratelimit-reset") == "3");
  CHECK(h.host.metric("sluice_ratelimit_limited_total") == 1);
}

TEST_CASE("Ratelimit: tokens refill at the rate on the worker clock", "[ratelimit]") {
  RatelimitHarness h;
  REQUIRE(h.load(kPerKey));
  auto once = [&] {
    FakeStream s = request("/api", {{"x-api-key", "k"}});
    return h.run(s);
  };
  for (int i = 0; i < 3; i++) {
    CHECK(once() == 200);
  }
  CHECK(once() == 429);
  h.setNow(h.now_ms + 999);
  CHECK(once() == 429);
  h.setNow(h.now_ms + 1);
  CHECK(once() == 200); // one token after 1 s
  CHECK(once() == 429);
  h.setNow(h.now_ms + 3600 * 1000);
  for (int i = 0; i < 3; i++) {
    CHECK(once() == 200); // refilled to the burst, not beyond
  }
  CHECK(once() == 429);
}

TEST_CASE("Ratelimit: keys are separate; a missing header falls back to the client IP",
          "[ratelimit]") {
  RatelimitHarness h;
  REQUIRE(h.load(kPerKey));
  for (int i = 0; i < 3; i++) {
    FakeStream a = request("/api", {{"x-api-key", "a"}});
    CHECK(h.run(a) == 200);
  }
  FakeStream a = request("/api", {{"x-api-key", "a"}});
  CHECK(h.run(a) == 429);
  FakeStream b = request("/api", {{"x-api-key", "b"}});
  CHECK(h.run(b) == 200);
  // Without the header: the client IP is the key (and one IP's bucket is not another's).
  for (int i = 0; i < 3; i++) {
    FakeStream s = request("/api", {}, "10.1.1.1");
    CHECK(h.run(s) == 200);
  }
  FakeStream s = request("/api", {}, "10.1.1.1");
  CHECK(h.run(s) == 429);
  FakeStream other = request("/api", {}, "10.1.1.2");
  CHECK(h.run(other) == 200);
  // A header value that equals an IP is not that IP's bucket.
  FakeStream spoof = request("/api", {{"x-api-key", "10.1.1.1"}}, "10.9.9.9");
  CHECK(h.run(spoof) == 200);
}

TEST_CASE("Ratelimit: requests no rule matches are not limited and get no headers", "[ratelimit]") {
  RatelimitHarness h;
  REQUIRE(h.load(kPerKey));
  for (int i = 0; i < 10; i++) {
    FakeStream s = request("/other", {{"x-api-key", "k"}});
    CHECK(h.run(s) == 200);
    CHECK(headerOf(s.response_headers, "ratelimit-limit").empty());
  }
}

TEST_CASE("Ratelimit: first matching rule wins; a metadata key that is absent skips the rule",
          "[ratelimit]") {
  RatelimitHarness h;
  REQUIRE(h.load(R"({"rules": [
      {"key": {"metadata": "ai.agent"}, "requests_per_minute": 1, "burst": 1},
      {"match": {"methods": ["GET"]}, "key": {"client_ip": true}, "requests_per_minute": 1,
       "burst": 2}], "response_headers": true})"));
  FakeStream bot1 = request("/", {}, "10.0.0.1");
  bot1.metadata = {{"ai.agent", "GPTBot"}};
  CHECK(h.run(bot1) == 200);
  CHECK(headerOf(bot1.response_headers, "ratelimit-limit") == "1");
  FakeStream bot2 = request("/", {}, "10.0.0.2"); // same agent, other IP: same bucket
  bot2.metadata = {{"ai.agent", "GPTBot"}};
  CHECK(h.run(bot2) == 429);
  FakeStream other = request("/", {}, "10.0.0.1");
  other.metadata = {{"ai.agent", "ClaudeBot"}};
  CHECK(h.run(other) == 200);
  // No agent: the second rule (per IP, burst 2) applies.
  FakeStream human = request("/", {}, "10.0.0.1");
  CHECK(h.run(human) == 200);
  CHECK(headerOf(human.response_headers, "ratelimit-limit") == "2");
}

TEST_CASE("Ratelimit: without response_headers only Retry-After is sent", "[ratelimit]") {
  RatelimitHarness h;
  REQUIRE(h.load(R"({"rules": [{"requests_per_minute": 6, "burst": 1}]})"));
  FakeStream a = request("/");
  CHECK(h.run(a) == 200);
  CHECK(headerOf(a.response_headers, "ratelimit-limit").empty());
  FakeStream b = request("/");
  CHECK(h.run(b) == 429);
  const HeaderList* r = h.replyHeaders(b);
  REQUIRE(r != nullptr);
  CHECK(headerOf(*r, "retry-after") == "10"); // 6 per minute: one token every 10 s
  CHECK(headerOf(*r, "ratelimit-limit").empty());
}

TEST_CASE("Ratelimit: workers of a process share the buckets", "[ratelimit]") {
  RatelimitHarness h;
  REQUIRE(h.load(R"({"rules": [{"requests_per_minute": 60, "burst": 4}]})", 2));
  int allowed = 0;
  for (int i = 0; i < 8; i++) {
    FakeStream s = request("/");
    allowed += h.run(s, i % 2) == 200 ? 1 : 0;
  }
  CHECK(allowed == 4);
}

TEST_CASE("Ratelimit: config errors come back with JSON pointers", "[ratelimit]") {
  RatelimitHarness h;
  struct Case {
    const char* json;
    const char* pointer;
  };
  auto c = GENERATE(values<Case>({
      {R"({"rules": [{"requests_per_minute": 0, "burst": 1}]})", "/rules/0/requests_per_minute"},
      {R"({"rules": [{"requests_per_minute": 10, "burst": 0}]})", "/rules/0/burst"},
      {R"({"rules": [{"requests_per_minute": 10}]})", "/rules/0/burst"},
      {R"({"rules": [{"burst": 10}]})", "/rules/0/requests_per_minute"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1, "key": {"cookie": "x"}}]})",
       "/rules/0/key/cookie"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1, "key": {}}]})", "/rules/0/key"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1,
           "key": {"header": "x", "client_ip": true}}]})",
       "/rules/0/key"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1, "key": {"header": "bad name"}}]})",
       "/rules/0/key/header"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1, "key": {"client_ip": false}}]})",
       "/rules/0/key/client_ip"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1, "key": {"metadata": ""}}]})",
       "/rules/0/key/metadata"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1, "match": {"regex": "("}}]})",
       "/rules/0/match/regex"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1, "limit": 3}]})", "/rules/0/limit"},
      {R"({"rules": []})", "/rules"},
      {R"({})", "/rules"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}], "backend": "memcached"})",
       "/backend"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}],
           "backend": {"redis": {"address": "redis.internal:6379"}}})",
       "/backend/redis/address"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}],
           "backend": {"redis": {"address": "127.0.0.1:99999"}}})",
       "/backend/redis/address"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}],
           "backend": {"redis": {"address": "127.0.0.1"}}})",
       "/backend/redis/address"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}], "backend": {"redis": {}}})",
       "/backend/redis/address"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}],
           "backend": {"redis": {"address": "127.0.0.1:6379", "failure_mode": "open"}}})",
       "/backend/redis/failure_mode"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}],
           "backend": {"redis": {"address": "127.0.0.1:6379", "timeout_ms": 0}}})",
       "/backend/redis/timeout_ms"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}],
           "backend": {"redis": {"address": "127.0.0.1:6379", "pool": 3}}})",
       "/backend/redis/pool"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}], "response_header": true})",
       "/response_header"},
      {R"({"rules": [{"requests_per_minute": 1, "burst": 1}], "max_keys": 0})", "/max_keys"},
      {R"({"rules": )", ""},
  }));
  INFO(c.json);
  CHECK_FALSE(h.load(c.json));
  CHECK(h.ctx.hasError(c.pointer));
}

TEST_CASE("Ratelimit: Redis addresses", "[ratelimit]") {
  using sluice::filters::ratelimit::parseRedisAddress;
  std::string host;
  uint16_t port = 0;
  CHECK(parseRedisAddress("127.0.0.1:6379", host, port));
  CHECK((host == "127.0.0.1" && port == 6379));
  CHECK(parseRedisAddress("[::1]:7000", host, port));
  CHECK((host == "::1" && port == 7000));
  CHECK(parseRedisAddress("localhost:6380", host, port));
  CHECK((host == "127.0.0.1" && port == 6380));
  CHECK_FALSE(parseRedisAddress("::1:6379", host, port));
  CHECK_FALSE(parseRedisAddress("127.0.0.1:", host, port));
  CHECK_FALSE(parseRedisAddress("127.0.0.1:0", host, port));
  CHECK_FALSE(parseRedisAddress("1.2.3:6379", host, port));
  CHECK_FALSE(parseRedisAddress("[::1]6379", host, port));
}

} // namespace
} // namespace sluice::testing
