#pragma once

// The live configuration as one immutable snapshot: the typed config, every listener's filter
// chain with its filter configs created, and the clusters. Built whole on the main thread;
// workers receive a shared_ptr<const Snapshot> and never take a lock to read it.

#include "core/config/config.h"
#include "core/filter/registry.h"
#include "core/tls/context.h"
#include "core/upstream/cluster.h"
#include "sluice/filter.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace sluice::filter {

// One filter config (sluice_on_config_new's result); destroyed on the main thread.
class FilterInstance {
public:
  ~FilterInstance();
  const sluice_filter_descriptor_t* desc = nullptr;
  void* config = nullptr;
  std::string name;
  std::string type;
  std::string pointer; // the filter entry's JSON pointer ("/listeners/0/filters/2")
  ModulePtr module;    // keeps a .so mapped
  // Hooks present, resolved once: the filter manager skips absent ones without a branch per
  // descriptor field size check.
  bool has_request_body = false;
  bool has_response_headers = false;
  bool has_response_body = false;
  // sluice_filter_errors_total{filter} series (defined with the snapshot's metrics).
  uint32_t error_metric = 0xffffffffu;
};
using FilterInstancePtr = std::shared_ptr<FilterInstance>;

struct ListenerRuntime {
  const config::ListenerConfig* config = nullptr;
  std::shared_ptr<const tls::ServerContext> tls; // set for a TLS listener
  std::vector<FilterInstancePtr> filters;
  bool any_request_body_hook = false;
  bool any_response_body_hook = false;
  // Metric series ids (defined while the snapshot is built; read-only afterwards).
  struct Metrics {
    uint32_t requests[6]; // by status class, [1]..[5]
    uint32_t duration;
    uint32_t connections;
  } metrics{};
};

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerRuntime> listeners;
  std::vector<upstream::ClusterInfoPtr> clusters;
  uint64_t generation = 0;

  const ListenerRuntime* findListener(const std::string& name) const;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

struct BuildResult {
  SnapshotPtr snapshot;
  std::vector<config::ConfigError> errors;
};

// Creates every filter config (loading modules as needed) and the cluster infos. On any error,
// nothing is kept. Never on a worker, one build at a time: the first config on the start-up
// thread (beside the main loop), reloads (with `previous`) on the main thread.
// With `previous`, a cluster whose configuration did not change keeps its ClusterInfo (so its
// pools, health and drain state survive the reload).
// Start: the filter configs are started (sluice_on_config_start) once everything has been
// checked, so a snapshot that is returned is ready to go live. CheckOnly (`sluice validate`)
// checks the same things but returns no snapshot and starts nothing: no file is created and no
// thread started.
enum class BuildMode { Start, CheckOnly };
BuildResult buildSnapshot(std::shared_ptr<const config::Config> config, uint64_t generation,
                          const Snapshot* previous = nullptr, BuildMode mode = BuildMode::Start);

} // namespace sluice::filter
