// BM_Cors_*: the cors filter's per-request work through its C ABI on the in-memory fake host
// (the figures include the fake host's header lookups): a preflight answered locally (exact and
// regex origin) and an actual request (request hook + response hook adding the headers).

#include "filters/cors/cors_filter.h"
#include "sluice/filter.h"
#include "test/filters/common/fake_host.h"

#include <string>

#include <benchmark/benchmark.h>

namespace sluice::testing {
namespace {

const char* kConfig = R"({"allow_origins": ["https://app.example.com", "https://b.example.com"],
  "allow_origin_regex": ["https://[a-z]+\\.example\\.org", "https://[0-9]+\\.cdn\\.example\\.net"],
  "allow_methods": ["GET", "POST", "PUT"], "allow_headers": ["content-type", "authorization"],
  "expose_headers": ["x-request-id"], "max_age_s": 600, "allow_credentials": true})";

struct Cors {
  FakeHost host;
  FakeConfigCtx ctx;
  FakeWorker worker;
  const sluice_filter_descriptor_t* desc = nullptr;
  void* config = nullptr;
  void* state = nullptr;
  Cors() {
    desc =
        sluice_builtin_cors_init(host.table(), SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR)
            ->filters[0];
    config = desc->sluice_on_config_new(host.table(), ctx.handle(),
                                        {kConfig, std::char_traits<char>::length(kConfig)});
    state = desc->sluice_on_worker_new(config, worker.handle());
  }
  ~Cors() {
    desc->sluice_on_worker_destroy(config, state);
    desc->sluice_on_config_destroy(config);
  }
};

void preflight(benchmark::State& state, const char* origin) {
  Cors c;
  FakeStream s;
  s.worker = &c.worker;
  s.request_headers = {{":method", "OPTIONS"},
                       {":path", "/api/items"},
                       {":authority", "api.example.com"},
                       {"user-agent", "Mozilla/5.0"},
                       {"origin", origin},
                       {"access-control-request-method", "PUT"},
                       {"access-control-request-headers", "content-type"}};
  s.local_replies.reserve(1);
  for (auto _ : state) {
    s.local_replies.clear();
    void* f = c.desc->sluice_on_stream_new(c.config, c.state, s.handle());
    benchmark::DoNotOptimize(c.desc->sluice_on_request_headers(f, s.handle(), true));
    c.desc->sluice_on_stream_destroy(f);
  }
  if (s.local_replies.size() != 1 || s.local_replies[0] != 204) {
    state.SkipWithError("the preflight was not answered");
  }
}

void BM_Cors_PreflightExactOrigin(benchmark::State& state) {
  preflight(state, "https://b.example.com");
}
BENCHMARK(BM_Cors_PreflightExactOrigin);

void BM_Cors_PreflightRegexOrigin(benchmark::State& state) {
  preflight(state, "https://1234.cdn.example.net");
}
BENCHMARK(BM_Cors_PreflightRegexOrigin);

void BM_Cors_ActualRequest(benchmark::State& state) {
  Cors c;
  FakeStream s;
  s.worker = &c.worker;
  s.request_headers = {{":method", "GET"},
                       {":path", "/api/items"},
                       {":authority", "api.example.com"},
                       {"user-agent", "Mozilla/5.0"},
                       {"origin", "https://app.example.com"}};
  const HeaderList response = {{":status", "200"}, {"content-type", "application/json"}};
  for (auto _ : state) {
    s.response_headers = response;
    void* f = c.desc->sluice_on_stream_new(c.config, c.state, s.handle());
    benchmark::DoNotOptimize(c.desc->sluice_on_request_headers(f, s.handle(), true));
    benchmark::DoNotOptimize(c.desc->sluice_on_response_headers(f, s.handle(), false));
    c.desc->sluice_on_stream_destroy(f);
  }
  if (s.response_headers.size() != 6) {
    state.SkipWithError("the CORS headers were not added");
  }
}
BENCHMARK(BM_Cors_ActualRequest);

} // namespace
} // namespace sluice::testing
