#pragma once

// Periodic re-resolution of hostname endpoints, on the main thread's loop with libuv's
// asynchronous getaddrinfo (the resolver runs on libuv's thread pool, never on a worker, and
// never blocks the main loop). Every cluster with a hostname endpoint is resolved again every
// dns_refresh_ms. A changed address is published to the endpoint (new connections go there),
// and `on_change` lets the workers close their idle connections to the old one; busy ones
// finish their exchange and are then closed instead of reused. A failed lookup keeps the last
// good address.

#include "core/event/dispatcher.h"
#include "core/upstream/cluster.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::upstream {

class DnsRefresher {
public:
  using OnChange = std::function<void(const std::string& cluster, size_t endpoint_index)>;
  DnsRefresher(event::Dispatcher& dispatcher, OnChange on_change);
  ~DnsRefresher();
  DnsRefresher(const DnsRefresher&) = delete;
  DnsRefresher& operator=(const DnsRefresher&) = delete;

  // The live clusters; clusters kept from before keep their timers.
  void sync(const std::vector<ClusterInfoPtr>& clusters);
  // Starts a lookup of every hostname endpoint now (tests and the admin API).
  void refreshAll();
  size_t lookupsInFlight() const;

private:
  struct Lookup;
  struct Entry {
    ClusterInfoPtr cluster;
    event::TimerPtr timer;
    std::vector<Lookup*> in_flight;
  };
  void refresh(Entry& e);
  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res);

  event::Dispatcher& dispatcher_;
  OnChange on_change_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

} // namespace sluice::upstream
