#pragma once

// Clusters: the immutable description shared by every worker (ClusterInfo, with per-endpoint
// atomics that health checking and drain will write) and the per-worker pools that pick an
// endpoint and reuse kept-alive connections.

#include "core/config/config.h"
#include "core/event/dispatcher.h"
#include "core/network/socket.h"
#include "core/tls/context.h"

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace sluice::upstream {

struct Endpoint {
  std::string address; // "host:port" as configured
  std::string host;    // its host (no brackets): the TLS server name when the cluster has no sni
  bool host_is_ip = false;
  // The socket address connections go to. A hostname is re-resolved on the main thread; a
  // change publishes a new address and bumps addr_generation, and pooled connections made to
  // an older address are closed instead of reused (they drain).
  std::shared_ptr<const network::SockAddr> sockAddr() const {
    return addr_.load(std::memory_order_acquire);
  }
  void setSockAddr(const network::SockAddr& a, const std::string& text) {
    addr_.store(std::make_shared<const network::SockAddr>(a), std::memory_order_release);
    resolved_text = text;
    addr_generation.fetch_add(1, std::memory_order_release);
    resolved.store(true, std::memory_order_release);
  }
  std::atomic<bool> resolved{false};
  std::atomic<uint32_t> addr_generation{0};
  std::string resolved_text; // main thread only (for /clusters)
  uint32_t weight = 1;
  std::atomic<bool> healthy{true};
  std::atomic<bool> draining{false};
  std::atomic<int64_t> active_requests{0};
  std::atomic<int64_t> active_connections{0};
  // Passive outlier detection (written by every worker with relaxed atomics).
  std::atomic<uint32_t> consecutive_failures{0};
  std::atomic<uint32_t> ejections{0};
  std::atomic<uint64_t> ejected_until_ms{0}; // monotonic ms; 0 = not ejected

  bool ejected() const {
    uint64_t until = ejected_until_ms.load(std::memory_order_relaxed);
    return until != 0 && until > monotonicMs();
  }
  bool available() const {
    return resolved.load(std::memory_order_relaxed) && healthy.load(std::memory_order_relaxed) &&
           !draining.load(std::memory_order_relaxed) && !ejected();
  }
  static uint64_t monotonicMs();

private:
  std::atomic<std::shared_ptr<const network::SockAddr>> addr_;
};

// 64-bit FNV-1a: stable hashing for ring_hash and maglev keys and tables.
uint64_t hashKey(std::string_view key);

class ClusterInfo {
public:
  static constexpr size_t kMaglevTableSize = 65537; // prime
  static constexpr uint32_t kRingReplicas = 160;    // virtual nodes per unit of weight

  explicit ClusterInfo(const config::ClusterConfig& cfg);
  // Hostname endpoints start unresolved; upstream::DnsRefresher resolves them (asynchronously,
  // before the config goes live) and keeps them fresh.
  // Copies health, drain, ejection and resolved-address state from `old` for every endpoint
  // with the same configured address (a reload that changed the cluster). Main thread, before
  // any worker sees this cluster.
  void inheritEndpointState(const ClusterInfo& old);

  // Metric series ids, set once on the main thread before workers use the cluster.
  struct Metrics {
    uint32_t requests[6]; // by status class, [1]..[5]
    uint32_t duration;
    uint32_t connect_failure;
    uint32_t timeout;
    uint32_t reset;
    uint32_t overflow;
    uint32_t connections_active;
    uint32_t retries;
    uint32_t retries_budget_exhausted;
    bool defined;
  } metrics{};

  const std::string& name() const { return cfg_.name; }
  const config::ClusterConfig& config() const { return cfg_; }
  // TLS to the endpoints (null: plaintext). Set once while the snapshot is built.
  const std::shared_ptr<const tls::ClientContext>& tls() const { return tls_; }
  void setTls(std::shared_ptr<const tls::ClientContext> tls) { tls_ = std::move(tls); }
  std::vector<std::unique_ptr<Endpoint>>& endpoints() { return endpoints_; }
  const std::vector<std::unique_ptr<Endpoint>>& endpoints() const { return endpoints_; }
  // Consistent hashing tables (immutable once built; built for ring_hash / maglev only).
  // Both skip unavailable endpoints at lookup by walking on, so a healthy endpoint's keys stay.
  int ringLookup(uint64_t hash) const;
  int maglevLookup(uint64_t hash) const;
  // Round robin: a precomputed smooth weighted schedule of endpoint indices (every endpoint
  // in index order when the weights are equal; earliest-deadline-first interleaving otherwise),
  // empty when the total weight is too large to precompute (kMaxSchedule).
  const std::vector<uint32_t>& rrSchedule() const { return rr_schedule_; }
  // Weighted random: cumulative weights by endpoint index, and their total.
  const std::vector<uint64_t>& cumulativeWeights() const { return cum_weights_; }
  static constexpr size_t kMaxSchedule = 1u << 20;

  // Outlier detection: a failure (5xx, connect failure, reset) or a success of a request to
  // endpoint `i`; ejects it after consecutive_5xx failures for base_ejection_ms × its ejection
  // count, never more than max_ejection_percent of the cluster at once.
  void recordOutcome(size_t i, bool failure);

  // Circuit breaker state, shared by every worker.
  std::atomic<int64_t> active_requests{0};
  std::atomic<int64_t> pending_requests{0};
  std::atomic<int64_t> active_retries{0}; // streams on a retry attempt, for the retry budget

private:
  void buildRing();
  void buildMaglev();
  void buildSchedules();

  config::ClusterConfig cfg_;
  std::shared_ptr<const tls::ClientContext> tls_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::vector<std::pair<uint64_t, uint32_t>> ring_; // (point, endpoint), sorted
  std::vector<uint32_t> maglev_;                    // kMaglevTableSize entries
  std::vector<uint32_t> rr_schedule_;
  std::vector<uint64_t> cum_weights_;
};

using ClusterInfoPtr = std::shared_ptr<ClusterInfo>;

} // namespace sluice::upstream
