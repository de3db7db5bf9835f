#include "core/upstream/cluster.h"

#include "core/common/logger.h"

#include <algorithm>
#include <ctime>
#include <numeric>
#include <queue>

namespace sluice::upstream {

uint64_t hashKey(std::string_view key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  // Finalizer (splitmix64) so short keys spread over the whole range.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

ClusterInfo::ClusterInfo(const config::ClusterConfig& cfg) : cfg_(cfg) {
  for (const auto& e : cfg_.endpoints) {
    auto ep = std::make_unique<Endpoint>();
    ep->address = e.address.text;
    ep->host = e.address.host;
    ep->host_is_ip = e.address.is_ip;
    ep->weight = e.weight;
    network::SockAddr sa;
    if (network::toSockAddr(e.address, sa)) {
      ep->setSockAddr(sa, network::formatAddress(sa.get()));
    }
    endpoints_.push_back(std::move(ep));
  }
  buildSchedules();
  if (cfg_.lb_policy == config::LbPolicy::RingHash) {
    buildRing();
  } else if (cfg_.lb_policy == config::LbPolicy::Maglev) {
    buildMaglev();
  }
}

void ClusterInfo::buildSchedules() {
  uint64_t total = 0;
  uint64_t g = 0;
  for (const auto& e : endpoints_) {
    total += e->weight;
    cum_weights_.push_back(total);
    g = std::gcd(g, static_cast<uint64_t>(e->weight));
  }
  if (endpoints_.empty() || g == 0) {
    return;
  }
  uint64_t length = total / g;
  if (length > kMaxSchedule) {
    return; // pickRoundRobin scans with smooth weighted round robin instead
  }
  rr_schedule_.reserve(length);
  if (length == endpoints_.size()) {
    for (uint32_t i = 0; i < endpoints_.size(); i++) {
      rr_schedule_.push_back(i); // equal weights
    }
    return;
  }
  if (length * endpoints_.size() <= (16u << 20)) {
    // Smooth weighted round robin (as in nginx), run once here instead of on every pick.
    std::vector<int64_t> current(endpoints_.size(), 0);
    int64_t sum = static_cast<int64_t>(length);
    while (rr_schedule_.size() < length) {
      size_t best = 0;
      for (size_t i = 0; i < endpoints_.size(); i++) {
        current[i] += endpoints_[i]->weight / g;
        if (current[i] > current[best]) {
          best = i;
        }
      }
      current[best] -= sum;
      rr_schedule_.push_back(static_cast<uint32_t>(best));
    }
    return;
  }
  // Too many endpoints for that: earliest deadline first, endpoint i's k-th slot due at
  // (k + 1/2) / w_i, which spreads each endpoint's picks evenly over the cycle.
  using Slot = std::pair<double, uint32_t>; // (deadline, endpoint)
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> due;
  std::vector<uint64_t> taken(endpoints_.size(), 0);
  for (uint32_t i = 0; i < endpoints_.size(); i++) {
    due.push({0.5 / static_cast<double>(endpoints_[i]->weight / g), i});
  }
  while (rr_schedule_.size() < length) {
    auto [deadline, i] = due.top();
    due.pop();
    rr_schedule_.push_back(i);
    uint64_t w = endpoints_[i]->weight / g;
    if (++taken[i] < w) {
      due.push({(static_cast<double>(taken[i]) + 0.5) / static_cast<double>(w), i});
    }
  }
}

void ClusterInfo::buildRing() {
  // Points depend only on each endpoint's address and weight, so adding or removing one endpoint
  // moves only the keys that fall on its points (about 1/N).
  for (uint32_t i = 0; i < endpoints_.size(); i++) {
    uint32_t n = kRingReplicas * endpoints_[i]->weight;
    for (uint32_t r = 0; r < n; r++) {
      ring_.emplace_back(hashKey(endpoints_[i]->address + "#" + std::to_string(r)), i);
    }
  }
  std::sort(ring_.begin(), ring_.end());
}

void ClusterInfo::buildMaglev() {
  // Maglev (Eisenbud et al., NSDI 2016) with weights: each endpoint fills table slots from its
  // own permutation; heavier endpoints take more turns per round.
  const size_t m = kMaglevTableSize;
  size_t n = endpoints_.size();
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  uint32_t max_weight = 1;
  for (size_t i = 0; i < n; i++) {
    offset[i] = hashKey(endpoints_[i]->address + "/offset") % m;
    skip[i] = hashKey(endpoints_[i]->address + "/skip") % (m - 1) + 1;
    max_weight = std::max(max_weight, endpoints_[i]->weight);
  }
  maglev_.assign(m, UINT32_MAX);
  size_t filled = 0;
  for (uint64_t round = 0; filled < m; round++) {
    for (size_t i = 0; i < n && filled < m; i++) {
      // An endpoint of weight w takes a turn in w of every max_weight rounds.
      if ((round % max_weight) >= endpoints_[i]->weight) {
        continue;
      }
      uint64_t c = (offset[i] + next[i] * skip[i]) % m;
      while (maglev_[c] != UINT32_MAX) {
        next[i]++;
        c = (offset[i] + next[i] * skip[i]) % m;
      }
      maglev_[c] = static_cast<uint32_t>(i);
      next[i]++;
      filled++;
    }
  }
}

uint64_t Endpoint::monotonicMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); // vDSO, no syscall
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void ClusterInfo::recordOutcome(size_t i, bool failure) {
  if (!cfg_.outlier_detection || i >= endpoints_.size()) {
    return;
  }
  Endpoint& ep = *endpoints_[i];
  if (!failure) {
    if (ep.consecutive_failures.load(std::memory_order_relaxed) != 0) {
      ep.consecutive_failures.store(0, std::memory_order_relaxed);
    }
    return;
  }
  const auto& od = *cfg_.outlier_detection;
  uint32_t n = ep.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < od.consecutive_5xx || ep.ejected()) {
    return;
  }
  size_t ejected = 0;
  for (const auto& e : endpoints_) {
    ejected += e->ejected() ? 1 : 0;
  }
  if ((ejected + 1) * 100 > static_cast<size_t>(od.max_ejection_percent) * endpoints_.size()) {
    return; // the cap: never eject more than max_ejection_percent of the cluster
  }
  uint32_t times = ep.ejections.fetch_add(1, std::memory_order_relaxed) + 1;
  ep.ejected_until_ms.store(Endpoint::monotonicMs() + od.base_ejection_ms * times,
                            std::memory_order_relaxed);
  ep.consecutive_failures.store(0, std::memory_order_relaxed);
  SLUICE_LOG(Warn, "outlier", "cluster {}: endpoint {} ejected for {} ms (ejection {})", cfg_.name,
             ep.address, od.base_ejection_ms * times, times);
}

int ClusterInfo::ringLookup(uint64_t hash) const {
  if (ring_.empty()) {
    return -1;
  }
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(hash, 0u));
  for (size_t step = 0; step < ring_.size(); step++, ++it) {
    if (it == ring_.end()) {
      it = ring_.begin();
    }
    if (endpoints_[it->second]->available()) {
      return static_cast<int>(it->second);
    }
  }
  return -1;
}

int ClusterInfo::maglevLookup(uint64_t hash) const {
  if (maglev_.empty()) {
    return -1;
  }
  size_t slot = hash % maglev_.size();
  for (size_t step = 0; step < maglev_.size(); step++) {
    uint32_t e = maglev_[(slot + step) % maglev_.size()];
    if (endpoints_[e]->available()) {
      return static_cast<int>(e);
    }
  }
  return -1;
}

void ClusterInfo::inheritEndpointState(const ClusterInfo& old) {
  for (auto& ep : endpoints_) {
    for (const auto& o : old.endpoints_) {
      if (o->address != ep->address) {
        continue;
      }
      if (cfg_.health_check && old.cfg_.health_check) {
        ep->healthy.store(o->healthy.load()); // the new checker's first result decides again
      }
      ep->draining.store(o->draining.load());
      ep->consecutive_failures.store(o->consecutive_failures.load());
      ep->ejections.store(o->ejections.load());
      ep->ejected_until_ms.store(o->ejected_until_ms.load());
      if (!ep->resolved.load() && o->resolved.load()) {
        ep->setSockAddr(*o->sockAddr(), o->resolved_text);
      }
      break;
    }
  }
}

} // namespace sluice::upstream
