#pragma once

// Active health checks for one cluster, on the main thread's loop (never on a worker): an HTTP
// GET of the configured path on every endpoint at interval_ms (with ±10 % jitter), bounded by
// timeout_ms. Results flip Endpoint::healthy (an atomic the workers' load balancers read) after
// healthy_threshold / unhealthy_threshold consecutive results; the first result decides at once.

#include "core/event/dispatcher.h"
#include "core/upstream/cluster.h"

#include <memory>
#include <vector>

namespace sluice::upstream {

class HealthChecker {
public:
  HealthChecker(event::Dispatcher& dispatcher, ClusterInfoPtr info);
  ~HealthChecker();
  void start();
  const ClusterInfo* cluster() const { return info_.get(); }

private:
  class Probe;
  event::Dispatcher& dispatcher_;
  ClusterInfoPtr info_;
  std::vector<std::unique_ptr<Probe>> probes_;
};

} // namespace sluice::upstream
