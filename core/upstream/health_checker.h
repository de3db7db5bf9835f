#pragma once

// Active health checks for one cluster, on the main thread's loop (never on a worker): an HTTP
// GET of the configured path on every endpoint at interval_ms (with ±10 % jitter), bounded by
// timeout_ms. Results flip Endpoint::healthy (an atomic the workers' load balancers read) after
// healthy_threshold / unhealthy_threshold consecutive results; the first result decides at once.
// The first round holds the process's readiness (before it first reports ready): /ready waits
// until every endpoint has had its first result. An endpoint without an address yet is not
// probed (and counts as done for that round).

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
  void firstResult(); // one endpoint's first round ended

  event::Dispatcher& dispatcher_;
  ClusterInfoPtr info_;
  std::vector<std::unique_ptr<Probe>> probes_;
  size_t first_pending_ = 0; // endpoints whose first round has not ended
  uint64_t ready_hold_ = 0;  // Readiness hold while first_pending_ > 0
};

} // namespace sluice::upstream
