// The Redis backend through the C ABI on the fake host, against a real redis-server: the hiredis
// adapter over the host's fd watches, EVALSHA with the EVAL fallback, two configs (two
// "processes") sharing one bucket, failure_mode when Redis is down, reconnect, and every watch
// closed at worker destroy.

#include "test/filters/ratelimit/harness.h"

#include <catch2/catch.hpp>

namespace sluice::testing {
namespace {

constexpr int kRedisTimeoutMs = 500; // the backend's timeout_ms in these configs

std::string redisConfig(int port, const std::string& mode = "allow", int burst = 3,
                        const std::string& prefix = "") {
  return R"({"rules": [{"key": {"header": "x-user"}, "requests_per_minute": 60, "burst": )" +
         std::to_string(burst) + R"(}], "response_headers": true,
    "backend": {"redis": {"address": "127.0.0.1:)" +
         std::to_string(port) + R"(", "timeout_ms": )" + std::to_string(kRedisTimeoutMs) +
         R"(, "failure_mode": ")" + mode + R"(", "prefix": "test:)" + prefix + R"(:"}}})";
}

// Starts a request and pumps until the filter resumes it or answers it.
uint32_t decide(RatelimitHarness& h, FakeStream& s, size_t worker = 0) {
  sluice_status_t r = h.start(s, worker);
  if (r == SLUICE_STATUS_STOP && s.local_replies.empty()) {
    REQUIRE(h.pump([&] { return h.resumed(s) || !s.local_replies.empty(); }));
  }
  h.finish(s);
  return s.local_replies.empty() ? 200 : s.local_replies.back();
}

bool connected(RatelimitHarness& h) {
  // The client connects when the worker starts; the first writable event completes it.
  return h.pump(
      [&] {
        return h.worker().ios.size() == 1 &&
               h.worker().ios.begin()->second.events & SLUICE_IO_READABLE;
      },
      3000);
}

TEST_CASE("Ratelimit Redis: bursts and headers come from the script", "[ratelimit][redis]") {
  RedisServer redis;
  REQUIRE(redis.ready());
  RatelimitHarness h;
  REQUIRE(h.load(redisConfig(redis.port(), "allow", 3, "a")));
  for (int i = 0; i < 3; i++) {
    FakeStream s = request("/", {{"x-user", "alice"}});
    CHECK(decide(h, s) == 200);
    CHECK(headerOf(s.response_headers, "ratelimit-limit") == "3");
    CHECK(headerOf(s.response_headers, "ratelimit-remaining") == std::to_string(2 - i));
  }
  FakeStream denied = request("/", {{"x-user", "alice"}});
  CHECK(decide(h, denied) == 429);
  CHECK((denied.response_flags & SLUICE_FLAG_RATE_LIMITED) != 0);
  const HeaderList* r = h.replyHeaders(denied);
  REQUIRE(r != nullptr);
  CHECK(headerOf(*r, "retry-after") == "1");
  CHECK(headerOf(*r, "ratelimit-remaining") == "0");
  FakeStream bob = request("/", {{"x-user", "bob"}});
  CHECK(decide(h, bob) == 200);
  CHECK(h.host.metric("sluice_ratelimit_limited_total") == 1);
  CHECK(h.host.metric("sluice_ratelimit_redis_errors_total") == 0);
  for (const FakeMetric& m : h.host.metrics()) {
    if (m.name == "sluice_ratelimit_redis_duration_seconds") {
      CHECK(m.observations == 5);
    }
  }
}

TEST_CASE("Ratelimit Redis: checks are pipelined and two configs share one bucket",
          "[ratelimit][redis]") {
  RedisServer redis;
  REQUIRE(redis.ready());
  RatelimitHarness h1;
  REQUIRE(h1.load(redisConfig(redis.port(), "allow", 10, "shared"), 2));
  // Ten requests started in one loop turn on two workers: all in flight at once.
  std::vector<FakeStream> streams;
  streams.reserve(14);
  for (int i = 0; i < 14; i++) {
    streams.push_back(request("/", {{"x-user", "carol"}}));
  }
  for (int i = 0; i < 14; i++) {
    CHECK(h1.start(streams[i], i % 2) == SLUICE_STATUS_STOP);
  }
  REQUIRE(h1.pump([&] {
    return std::all_of(streams.begin(), streams.end(),
                       [&](FakeStream& s) { return h1.resumed(s) || !s.local_replies.empty(); });
  }));
  int allowed = 0;
  for (auto& s : streams) {
    allowed += s.local_replies.empty() ? 1 : 0;
    h1.finish(s);
  }
  CHECK(allowed == 10);
  h1.unload();
  // A second "process" (another config, same prefix and filter name) sees the same bucket.
  RatelimitHarness h2;
  REQUIRE(h2.load(redisConfig(redis.port(), "allow", 10, "shared")));
  FakeStream s = request("/", {{"x-user", "carol"}});
  CHECK(decide(h2, s) == 429);
}

TEST_CASE("Ratelimit Redis: a flushed script cache falls back to EVAL", "[ratelimit][redis]") {
  RedisServer redis;
  REQUIRE(redis.ready());
  RatelimitHarness h;
  REQUIRE(h.load(redisConfig(redis.port(), "deny", 5, "noscript")));
  // A fresh Redis has no script cached: the first check gets NOSCRIPT and is resent as EVAL.
  FakeStream s = request("/", {{"x-user", "dave"}});
  CHECK(decide(h, s) == 200);
  CHECK(headerOf(s.response_headers, "ratelimit-remaining") == "4");
  FakeStream t = request("/", {{"x-user", "dave"}});
  CHECK(decide(h, t) == 200);
  CHECK(headerOf(t.response_headers, "ratelimit-remaining") == "3");
  CHECK(h.host.metric("sluice_ratelimit_redis_errors_total") == 0);
}

TEST_CASE("Ratelimit Redis: a cluster names the servers, picked again on every connect",
          "[ratelimit][redis]") {
  RedisServer redis;
  REQUIRE(redis.ready());
  RatelimitHarness h;
  h.ctx.clusters = {"redis"};
  const std::string by_cluster = R"({"rules": [{"key": {"header": "x-user"},
    "requests_per_minute": 60, "burst": 2}], "response_headers": true,
    "backend": {"redis": {"cluster": "redis", "timeout_ms": 500, "prefix": "test:cl:"}}})";
  // No endpoint available yet: counted as a connection error, retried with backoff.
  REQUIRE(h.load(by_cluster));
  CHECK(h.host.cluster_picks == 1);
  CHECK(h.host.metric("sluice_ratelimit_redis_errors_total") == 1);
  h.host.cluster_addresses["redis"] = "127.0.0.1:" + std::to_string(redis.port());
  REQUIRE(connected(h));
  CHECK(h.host.cluster_picks >= 2);
  FakeStream a = request("/", {{"x-user", "cl"}});
  CHECK(decide(h, a) == 200);
  CHECK(headerOf(a.response_headers, "ratelimit-limit") == "2");
  FakeStream b = request("/", {{"x-user", "cl"}});
  CHECK(decide(h, b) == 200);
  FakeStream c = request("/", {{"x-user", "cl"}});
  CHECK(decide(h, c) == 429);
}

TEST_CASE("Ratelimit Redis: cluster config errors", "[ratelimit][redis]") {
  RatelimitHarness h;
  h.ctx.clusters = {"redis"};
  auto hasError = [&](std::string_view pointer, std::string_view words) {
    for (const auto& [p, m] : h.ctx.errors) {
      if (p == pointer && m.find(words) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  CHECK_FALSE(h.load(R"({"rules": [{"requests_per_minute": 6, "burst": 1}],
    "backend": {"redis": {"cluster": "nope"}}})"));
  CHECK(hasError("/backend/redis/cluster", "unknown cluster \"nope\""));
  CHECK_FALSE(h.load(R"({"rules": [{"requests_per_minute": 6, "burst": 1}],
    "backend": {"redis": {"cluster": "redis", "address": "127.0.0.1:6379"}}})"));
  CHECK(hasError("/backend/redis", "not both"));
  CHECK_FALSE(h.load(R"({"rules": [{"requests_per_minute": 6, "burst": 1}],
    "backend": {"redis": {"address": "redis.internal:6379"}}})"));
  CHECK(hasError("/backend/redis/address", "give \"cluster\""));
}

TEST_CASE("Ratelimit Redis: readiness is held until the first connect attempt ends",
          "[ratelimit][redis]") {
  SECTION("Redis answers") {
    RedisServer redis;
    REQUIRE(redis.ready());
    RatelimitHarness h;
    REQUIRE(h.load(redisConfig(redis.port(), "allow", 3, "ready")));
    REQUIRE(h.host.ready_holds.size() == 1);
    CHECK(h.host.ready_holds.begin()->second.find("first connection to Redis 127.0.0.1:" +
                                                  std::to_string(redis.port())) !=
          std::string::npos);
    REQUIRE(connected(h));
    CHECK(h.host.ready_holds.empty());
  }
  SECTION("nothing listens: released when the attempt fails, not held forever") {
    RedisServer redis;
    const int port = redis.port();
    redis.stop();
    RatelimitHarness h;
    REQUIRE(h.load(redisConfig(port, "allow", 3, "ready-down")));
    CHECK(h.host.ready_holds.size() == 1);
    CHECK(h.pump([&] { return h.host.ready_holds.empty(); }, 3000));
  }
  SECTION("the worker state goes away first") {
    RedisServer redis;
    REQUIRE(redis.ready());
    RatelimitHarness h;
    REQUIRE(h.load(redisConfig(redis.port(), "allow", 3, "ready-gone")));
    CHECK(h.host.ready_holds.size() == 1);
    h.unload();
    CHECK(h.host.ready_holds.empty());
  }
}

TEST_CASE("Ratelimit Redis: failure_mode when Redis is down, then reconnect",
          "[ratelimit][redis]") {
  RedisServer redis;
  REQUIRE(redis.ready());
  const std::string mode = GENERATE(std::string("allow"), std::string("deny"));
  RatelimitHarness h;
  REQUIRE(h.load(redisConfig(redis.port(), mode, 100, "down-" + mode)));
  FakeStream ok = request("/", {{"x-user", "erin"}});
  CHECK(decide(h, ok) == 200);
  redis.stop();
  // In flight when the connection drops, or refused while reconnecting: failure_mode decides.
  for (int i = 0; i < 3; i++) {
    FakeStream s = request("/", {{"x-user", "erin"}});
    const uint32_t status = decide(h, s);
    CHECK(status == (mode == "allow" ? 200u : 429u));
    CHECK(headerOf(s.response_headers, "ratelimit-limit").empty());
    if (mode == "deny") {
      const HeaderList* r = h.replyHeaders(s);
      REQUIRE(r != nullptr);
      CHECK(headerOf(*r, "retry-after") == "1");
    }
  }
  CHECK(h.host.metric("sluice_ratelimit_redis_errors_total") >= 3);
  redis.start();
  REQUIRE(redis.ready());
  // The client reconnects with backoff; answers come from Redis again.
  bool back = h.pump(
      [&] {
        FakeStream s = request("/", {{"x-user", "erin"}});
        return decide(h, s) == 200 && !headerOf(s.response_headers, "ratelimit-limit").empty();
      },
      8000);
  CHECK(back);
}

TEST_CASE("Ratelimit Redis: a stream that ends while its check is in flight is dropped safely",
          "[ratelimit][redis]") {
  RedisServer redis;
  REQUIRE(redis.ready());
  RatelimitHarness h;
  REQUIRE(h.load(redisConfig(redis.port(), "allow", 5, "gone")));
  FakeStream first = request("/", {{"x-user", "frank"}}); // loads the script
  CHECK(decide(h, first) == 200);
  FakeStream s = request("/", {{"x-user", "frank"}});
  CHECK(h.start(s) == SLUICE_STATUS_STOP);
  h.finish(s); // the client went away
  FakeStream t = request("/", {{"x-user", "frank"}});
  CHECK(decide(h, t) == 200);
  CHECK_FALSE(h.resumed(s));
  CHECK(headerOf(t.response_headers, "ratelimit-remaining") == "2"); // s's token was taken
}

TEST_CASE("Ratelimit Redis: no answer within timeout_ms applies failure_mode",
          "[ratelimit][redis]") {
  RedisServer redis;
  REQUIRE(redis.ready());
  RatelimitHarness h;
  REQUIRE(h.load(redisConfig(redis.port(), "deny", 5, "slow")));
  REQUIRE(connected(h));
  FakeStream s = request("/", {{"x-user", "gina"}});
  CHECK(h.start(s) == SLUICE_STATUS_STOP);
  // The fd is never polled: only time passes, as with a Redis that does not answer.
  h.setNow(h.now_ms + kRedisTimeoutMs + 1); // just past the check's deadline
  h.worker().fireDueTimers();
  CHECK(s.local_replies == std::vector<uint32_t>{429});
  h.finish(s);
  CHECK(h.host.metric("sluice_ratelimit_redis_errors_total") == 1);
}

TEST_CASE("Ratelimit Redis: the worker state may go away inside the client's own callback",
          "[ratelimit][redis]") {
  // After a reload, the last stream of the old config finishes inside the resume that the
  // Redis reply triggers, and the old worker state is destroyed right there.
  RedisServer redis;
  REQUIRE(redis.ready());
  RatelimitHarness h;
  REQUIRE(h.load(redisConfig(redis.port(), "allow", 5, "orphan")));
  FakeStream warm = request("/", {{"x-user", "hal"}});
  CHECK(decide(h, warm) == 200);
  FakeStream a = request("/", {{"x-user", "hal"}});
  FakeStream b = request("/", {{"x-user", "hal"}});
  CHECK(h.start(a) == SLUICE_STATUS_STOP);
  CHECK(h.start(b) == SLUICE_STATUS_STOP);
  bool destroyed = false;
  h.rec.on_resume = [&](FakeStream* s) {
    h.finish(s == &a ? a : b);
    if (!destroyed) {
      h.finish(s == &a ? b : a); // the other one is cancelled: its check is still in flight
      h.destroyWorkerState(0);
      destroyed = true;
    }
  };
  REQUIRE(h.pump([&] { return destroyed && h.worker().ios.empty(); }));
  h.rec.on_resume = nullptr;
}

} // namespace
} // namespace sluice::testing
