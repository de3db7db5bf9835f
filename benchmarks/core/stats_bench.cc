// BM_Stats_*: the recording hot path (one thread-sharded cell, no lock) and scrape rendering
// with 1,000 clusters' worth of series.
#include "core/stats/registry.h"

#include <string>
#include <vector>

#include <benchmark/benchmark.h>

using namespace sluice::stats;

namespace {

// Shared by the threads of a multi-threaded run; defined once, before any thread records.
Registry& benchRegistry() {
  static Registry registry;
  return registry;
}

void BM_Stats_CounterAdd(benchmark::State& state) {
  Registry& r = benchRegistry();
  const uint32_t id = r.defineCounter("sluice_bench_requests_total", "Bench",
                                      {{"listener", "web"}, {"code", "2xx"}});
  for (auto _ : state) {
    r.add(id, 1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Stats_CounterAdd)->Threads(1)->Threads(2);

void BM_Stats_HistogramObserve(benchmark::State& state) {
  Registry& r = benchRegistry();
  const uint32_t id = r.defineHistogram("sluice_bench_request_duration_seconds", "Bench",
                                        {{"listener", "web"}}, {});
  // Latencies spread over the default buckets, so the bucket search is not always the same.
  std::vector<double> samples;
  for (int i = 0; i < 64; i++) {
    samples.push_back(0.0002 * (1 << (i % 16)));
  }
  size_t i = 0;
  for (auto _ : state) {
    r.observe(id, samples[i++ & 63]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Stats_HistogramObserve)->Threads(1)->Threads(2);

// The core's per-cluster series (SPEC §5): 5 status classes, 4 error kinds, a duration
// histogram, an active-connections gauge and 3 endpoints' health, with some traffic recorded.
void defineClusters(Registry& r, int clusters) {
  const char* codes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  const char* kinds[] = {"connect_failure", "timeout", "reset", "overflow"};
  for (int c = 0; c < clusters; c++) {
    const std::string cluster = "cluster-" + std::to_string(c);
    for (const char* code : codes) {
      r.add(r.defineCounter("sluice_upstream_requests_total", "Upstream responses",
                            {{"cluster", cluster}, {"code", code}}),
            c + 1);
    }
    for (const char* kind : kinds) {
      r.defineCounter("sluice_upstream_errors_total", "Upstream failures",
                      {{"cluster", cluster}, {"kind", kind}});
    }
    const uint32_t duration = r.defineHistogram("sluice_upstream_request_duration_seconds",
                                                "Upstream time", {{"cluster", cluster}}, {});
    for (int k = 0; k < 8; k++) {
      r.observe(duration, 0.001 * (k + c % 7));
    }
    r.set(r.defineGauge("sluice_upstream_connections_active", "Open upstream connections",
                        {{"cluster", cluster}}),
          c % 13);
    for (int e = 0; e < 3; e++) {
      r.set(r.defineGauge(
                "sluice_upstream_endpoint_healthy", "Endpoint health",
                {{"cluster", cluster}, {"endpoint", "10.0.0." + std::to_string(e) + ":8080"}}),
            1);
    }
  }
}

void BM_Stats_RenderPrometheus(benchmark::State& state) {
  Registry r;
  defineClusters(r, static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = r.renderPrometheus();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
  state.counters["series"] = r.seriesCount();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Stats_RenderPrometheus)->Arg(1000)->Unit(benchmark::kMillisecond);

void BM_Stats_RenderJson(benchmark::State& state) {
  Registry r;
  defineClusters(r, static_cast<int>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string json = r.renderJson();
    bytes = json.size();
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
}
BENCHMARK(BM_Stats_RenderJson)->Arg(1000)->Unit(benchmark::kMillisecond);

} // namespace
