#include "core/filter/stream_stats.h"

#include "core/filter/worker_context.h"
#include "core/stats/core_metrics.h"
#include "core/stats/registry.h"

#include <string>
#include <utility>

#include <uv.h>

namespace sluice::filter::stats {

namespace {

using sluice::stats::CoreMetric;
using sluice::stats::Registry;
constexpr auto core = sluice::stats::coreMetric;

constexpr uint32_t kInvalid = sluice::stats::kInvalidId;
const char* kCodes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
uint32_t g_ready = kInvalid;
uint32_t g_draining = kInvalid;
uint32_t g_generation = kInvalid;

void add(uint32_t id, double v) {
  if (id != kInvalid) {
    Registry::global().add(id, v);
  }
}

} // namespace

namespace {
std::pair<uint32_t, uint32_t> reloadSeries() {
  static const uint32_t ok = Registry::global().defineCounter(core(CoreMetric::ConfigReloads).name,
                                                              core(CoreMetric::ConfigReloads).help,
                                                              {{"result", "success"}});
  static const uint32_t failed = Registry::global().defineCounter(
      core(CoreMetric::ConfigReloads).name, core(CoreMetric::ConfigReloads).help,
      {{"result", "failure"}});
  return {ok, failed};
}
} // namespace

void defineSnapshotMetrics(Snapshot& snapshot) {
  Registry& r = Registry::global();
  for (auto& l : snapshot.listeners) {
    const std::string& name = l.config->name;
    for (int c = 1; c <= 5; c++) {
      l.metrics.requests[c] = r.defineCounter(core(CoreMetric::DownstreamRequests).name,
                                              core(CoreMetric::DownstreamRequests).help,
                                              {{"listener", name}, {"code", kCodes[c]}});
    }
    l.metrics.duration = r.defineHistogram(core(CoreMetric::DownstreamRequestDuration).name,
                                           core(CoreMetric::DownstreamRequestDuration).help,
                                           {{"listener", name}}, {});
    l.metrics.connections =
        r.defineGauge(core(CoreMetric::DownstreamConnectionsActive).name,
                      core(CoreMetric::DownstreamConnectionsActive).help, {{"listener", name}});
  }
  for (auto& c : snapshot.clusters) {
    if (c->metrics.defined) {
      continue; // a ClusterInfo kept across a reload: workers read these ids right now
    }
    const std::string& name = c->name();
    auto& m = c->metrics;
    for (int k = 1; k <= 5; k++) {
      m.requests[k] = r.defineCounter(core(CoreMetric::UpstreamRequests).name,
                                      core(CoreMetric::UpstreamRequests).help,
                                      {{"cluster", name}, {"code", kCodes[k]}});
    }
    m.duration =
        r.defineHistogram(core(CoreMetric::UpstreamRequestDuration).name,
                          core(CoreMetric::UpstreamRequestDuration).help, {{"cluster", name}}, {});
    auto err = [&](const char* kind) {
      return r.defineCounter(core(CoreMetric::UpstreamErrors).name,
                             core(CoreMetric::UpstreamErrors).help,
                             {{"cluster", name}, {"kind", kind}});
    };
    m.connect_failure = err("connect_failure");
    m.timeout = err("timeout");
    m.reset = err("reset");
    m.overflow = err("overflow");
    m.retries = r.defineCounter(core(CoreMetric::UpstreamRetries).name,
                                core(CoreMetric::UpstreamRetries).help,
                                {{"cluster", name}, {"result", "retried"}});
    m.retries_budget_exhausted = r.defineCounter(
        core(CoreMetric::UpstreamRetries).name, core(CoreMetric::UpstreamRetries).help,
        {{"cluster", name}, {"result", "budget_exhausted"}});
    m.connections_active =
        r.defineGauge(core(CoreMetric::UpstreamConnectionsActive).name,
                      core(CoreMetric::UpstreamConnectionsActive).help, {{"cluster", name}});
    m.defined = true;
  }
  for (auto& l : snapshot.listeners) {
    for (auto& f : l.filters) {
      f->error_metric = r.defineCounter(core(CoreMetric::FilterErrors).name,
                                        core(CoreMetric::FilterErrors).help, {{"filter", f->name}});
    }
  }
  g_ready =
      r.defineGauge(core(CoreMetric::ServerReady).name, core(CoreMetric::ServerReady).help, {});
  g_draining = r.defineGauge(core(CoreMetric::ServerDraining).name,
                             core(CoreMetric::ServerDraining).help, {});
  g_generation = r.defineGauge(core(CoreMetric::ConfigGeneration).name,
                               core(CoreMetric::ConfigGeneration).help, {});
  reloadSeries(); // exposed (at 0) from the start, not only after the first reload
}

void recordReload(bool success) {
  auto [ok, failed] = reloadSeries();
  add(success ? ok : failed, 1);
}

void setServerState(bool ready, bool draining) {
  if (g_ready != kInvalid) {
    Registry::global().set(g_ready, ready ? 1 : 0);
    Registry::global().set(g_draining, draining ? 1 : 0);
  }
}

void setGeneration(uint64_t generation) {
  if (g_generation != kInvalid) {
    Registry::global().set(g_generation, static_cast<double>(generation));
  }
}

void recordStream(WorkerContext&, size_t, const ListenerRuntime& listener, uint32_t status,
                  uint64_t duration_us, upstream::ClusterPool* pool, bool upstream_answered) {
  uint32_t cls = status / 100;
  bool valid = cls >= 1 && cls <= 5;
  if (valid) {
    add(listener.metrics.requests[cls], 1);
  }
  if (listener.metrics.duration != kInvalid) {
    Registry::global().observe(listener.metrics.duration, static_cast<double>(duration_us) / 1e6);
  }
  if (pool != nullptr && upstream_answered && valid) {
    add(pool->info().metrics.requests[cls], 1);
  }
}

void recordUpstreamDuration(upstream::ClusterPool* pool, uint64_t us) {
  if (pool != nullptr && pool->info().metrics.duration != kInvalid) {
    Registry::global().observe(pool->info().metrics.duration, static_cast<double>(us) / 1e6);
  }
}

void recordUpstreamError(WorkerContext&, upstream::ClusterPool* pool, std::string_view kind) {
  if (pool == nullptr) {
    return;
  }
  const auto& m = pool->info().metrics;
  uint32_t id = kind == "connect_failure" ? m.connect_failure
                : kind == "timeout"       ? m.timeout
                : kind == "overflow"      ? m.overflow
                                          : m.reset;
  add(id, 1);
}

void recordFilterError(const FilterInstance& f) {
  add(f.error_metric, 1);
}

void recordRetry(upstream::ClusterPool* pool, bool allowed) {
  if (pool != nullptr) {
    add(allowed ? pool->info().metrics.retries : pool->info().metrics.retries_budget_exhausted, 1);
  }
}

void connectionOpened(const ListenerRuntime& listener, int delta) {
  add(listener.metrics.connections, delta);
}

uint64_t monotonicUs() {
  return uv_hrtime() / 1000;
}

} // namespace sluice::filter::stats
