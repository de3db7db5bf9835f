#pragma once

// The metric families the core defines, declared once: X(Id, "name", "help"). The core defines
// its series from this table, and the ABI refuses a module metric under any of these names or
// under a reserved prefix derived from them (see isReservedMetricName), so a family added here is
// reserved for the core the moment it exists.

#include <string>
#include <string_view>

#define SLUICE_CORE_METRICS(X)                                                                     \
  X(DownstreamRequests, "sluice_downstream_requests_total",                                        \
    "Requests received, by listener and status class")                                             \
  X(DownstreamRequestDuration, "sluice_downstream_request_duration_seconds",                       \
    "Time from the first request byte to the end of the response")                                 \
  X(DownstreamConnectionsActive, "sluice_downstream_connections_active",                           \
    "Open downstream connections")                                                                 \
  X(UpstreamRequests, "sluice_upstream_requests_total",                                            \
    "Responses received from upstreams, by status class")                                          \
  X(UpstreamRequestDuration, "sluice_upstream_request_duration_seconds",                           \
    "Time from sending the request to the upstream's response head")                               \
  X(UpstreamErrors, "sluice_upstream_errors_total", "Upstream failures by kind")                   \
  X(UpstreamRetries, "sluice_upstream_retries_total",                                              \
    "Retries sent to a cluster, and retries the retry budget refused")                             \
  X(UpstreamConnectionsActive, "sluice_upstream_connections_active",                               \
    "Open upstream connections of a cluster")                                                      \
  X(UpstreamEndpointHealthy, "sluice_upstream_endpoint_healthy",                                   \
    "1 when the endpoint passes its health checks")                                                \
  X(FilterErrors, "sluice_filter_errors_total",                                                    \
    "Streams a filter broke (an invalid hook status), ended with 500 by the filter manager")       \
  X(ServerReady, "sluice_server_ready", "1 when listeners are bound and the config is live")       \
  X(ServerDraining, "sluice_server_draining", "1 while shutting down")                             \
  X(ConfigGeneration, "sluice_config_generation", "Generation of the live config")                 \
  X(ConfigReloads, "sluice_config_reloads_total", "Configuration reloads by result")               \
  X(OverloadActions, "sluice_overload_actions_total",                                              \
    "Connections refused at accept and requests shed with 503 by overload protection")             \
  X(WorkerRequests, "sluice_worker_requests_total",                                                \
    "Requests each worker thread started to serve (shed requests not counted)")                    \
  X(WorkerConnections, "sluice_worker_connections_active",                                         \
    "Downstream connections each worker thread serves, over all listeners")

namespace sluice::stats {

enum class CoreMetric {
#define SLUICE_CORE_METRIC_ID(id, name, help) id,
  SLUICE_CORE_METRICS(SLUICE_CORE_METRIC_ID)
#undef SLUICE_CORE_METRIC_ID
};

struct CoreMetricInfo {
  const char* name;
  const char* help;
};

inline constexpr CoreMetricInfo kCoreMetrics[] = {
#define SLUICE_CORE_METRIC_INFO(id, name, help) {name, help},
    SLUICE_CORE_METRICS(SLUICE_CORE_METRIC_INFO)
#undef SLUICE_CORE_METRIC_INFO
};

inline const CoreMetricInfo& coreMetric(CoreMetric m) {
  return kCoreMetrics[static_cast<int>(m)];
}

// The prefix a core family reserves: "sluice_" and its first word ("sluice_upstream_").
inline std::string_view reservedPrefixOf(std::string_view core_name) {
  size_t end = core_name.find('_', sizeof("sluice_") - 1);
  return end == std::string_view::npos ? core_name : core_name.substr(0, end + 1);
}

// Why a metric family name is the core's, or empty if a filter may use it: a core family, or
// a name under a prefix that a core family reserves ("sluice_downstream_", "sluice_upstream_",
// "sluice_filter_", "sluice_server_", "sluice_config_", "sluice_overload_", "sluice_worker_").
inline std::string reservedMetricReason(std::string_view name) {
  for (const CoreMetricInfo& m : kCoreMetrics) {
    if (name == m.name) {
      return "is a core metric of sluice";
    }
  }
  for (const CoreMetricInfo& m : kCoreMetrics) {
    std::string_view prefix = reservedPrefixOf(m.name);
    if (name.substr(0, prefix.size()) == prefix) {
      return "is in the namespace \"" + std::string(prefix) +
             "\" that sluice reserves for its core";
    }
  }
  return {};
}

} // namespace sluice::stats
