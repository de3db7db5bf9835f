// BM_JwtAuthn_*: one request through the jwt_authn filter's C ABI (stream new, request headers,
// complete, destroy) on the in-memory fake host. Verify/<alg> has the token cache disabled, so
// every request pays the full parse + signature check; CacheHit* repeats one token with the
// cache on (a hash, a compare, the exp check and the header writes).

#include "test/filters/jwt_authn/harness.h"

#include <benchmark/benchmark.h>

namespace sluice::testing::jwt {
namespace {

void runRequests(benchmark::State& state, Harness& h, const std::string& token) {
  FakeWorker& w = h.worker();
  (void)w;
  Result r = h.start("/api", {{"authorization", "Bearer " + token}});
  if (r.denied()) {
    state.SkipWithError("token refused");
    return;
  }
  h.finish(r);
  FakeStream& s = *r.stream;
  void* ws = const_cast<filters::jwt_authn::WorkerState*>(h.state());
  for (auto _ : state) {
    void* f = h.desc->sluice_on_stream_new(h.config, ws, s.handle());
    sluice_status_t st = h.desc->sluice_on_request_headers(f, s.handle(), true);
    benchmark::DoNotOptimize(st);
    h.desc->sluice_on_stream_complete(f, s.handle());
    h.desc->sluice_on_stream_destroy(f);
  }
  if (!s.local_replies.empty()) {
    state.SkipWithError("a request was refused");
  }
}

Json benchConfig(size_t cache_entries, bool forward) {
  Json p = provider();
  if (forward) {
    p["forward_payload_header"] = "x-jwt-payload";
    p["claim_to_headers"] = {{{"claim", "sub"}, {"header", "x-user"}}};
  }
  return Json{
      {"providers", {p}},
      {"rules",
       {{{"match", {{"prefix", "/public"}}}}, {{"match", {{"prefix", "/"}}}, {"requires", "idp"}}}},
      {"token_cache_entries", cache_entries}};
}

void BM_JwtAuthn_Verify(benchmark::State& state, const char* alg) {
  Harness h;
  if (!h.load(benchConfig(0, false))) {
    state.SkipWithError("config refused");
    return;
  }
  runRequests(state, h, mint(alg));
}
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, RS256, "RS256");
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, RS384, "RS384");
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, RS512, "RS512");
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, PS256, "PS256");
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, ES256, "ES256");
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, ES384, "ES384");
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, EdDSA, "EdDSA");
BENCHMARK_CAPTURE(BM_JwtAuthn_Verify, HS256, "HS256");

void BM_JwtAuthn_CacheHit(benchmark::State& state) {
  Harness h;
  if (!h.load(benchConfig(1024, false))) {
    state.SkipWithError("config refused");
    return;
  }
  runRequests(state, h, mint("RS256"));
}
BENCHMARK(BM_JwtAuthn_CacheHit);

void BM_JwtAuthn_CacheHitForwardingClaims(benchmark::State& state) {
  Harness h;
  if (!h.load(benchConfig(1024, true))) {
    state.SkipWithError("config refused");
    return;
  }
  runRequests(state, h, mint("RS256"));
}
BENCHMARK(BM_JwtAuthn_CacheHitForwardingClaims);

// A request that no rule with `requires` covers: the cost of matching alone.
void BM_JwtAuthn_PublicPath(benchmark::State& state) {
  Harness h;
  if (!h.load(benchConfig(1024, false))) {
    state.SkipWithError("config refused");
    return;
  }
  Result r = h.start("/public/x");
  h.finish(r);
  FakeStream& s = *r.stream;
  void* ws = const_cast<filters::jwt_authn::WorkerState*>(h.state());
  for (auto _ : state) {
    void* f = h.desc->sluice_on_stream_new(h.config, ws, s.handle());
    benchmark::DoNotOptimize(h.desc->sluice_on_request_headers(f, s.handle(), true));
    h.desc->sluice_on_stream_complete(f, s.handle());
    h.desc->sluice_on_stream_destroy(f);
  }
}
BENCHMARK(BM_JwtAuthn_PublicPath);

} // namespace
} // namespace sluice::testing::jwt
