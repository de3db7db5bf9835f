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
  // The first round for a config about to go live: looks up every hostname endpoint of
  // `clusters` that has no address yet, and calls `done` on the loop once every lookup has
  // answered (a failed one leaves its endpoint unresolved; the periodic refresh retries it).
  // Returns how many lookups started; with 0, `done` is not called.
  size_t resolveFirst(const std::vector<ClusterInfoPtr>& clusters, std::function<void()> done);
  // Hostnames the first rounds still wait for ("cluster/host:port").
  std::vector<std::string> firstRoundPending() const;
  size_t lookupsInFlight() const;

private:
  struct Lookup;
  struct Round {
    size_t pending = 0;
    std::function<void()> done;
  };
  struct Entry {
    ClusterInfoPtr cluster;
    event::TimerPtr timer;
    std::vector<Lookup*> in_flight;
  };
  void refresh(Entry& e);
  Lookup* startLookup(const ClusterInfoPtr& cluster, size_t index);
  static void drop(Lookup* l);
  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res);

  event::Dispatcher& dispatcher_;
  OnChange on_change_;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<Lookup*> first_round_; // lookups of resolveFirst still in flight
};

} // namespace sluice::upstream
