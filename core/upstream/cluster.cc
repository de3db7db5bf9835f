#include "core/upstream/cluster.h"

#include "core/common/logger.h"

namespace sluice::upstream {

ClusterInfo::ClusterInfo(const config::ClusterConfig& cfg) : cfg_(cfg) {
  for (const auto& e : cfg_.endpoints) {
    auto ep = std::make_unique<Endpoint>();
    ep->address = e.address.text;
    ep->weight = e.weight;
    ep->resolved = network::toSockAddr(e.address, ep->addr);
    endpoints_.push_back(std::move(ep));
  }
}

void ClusterInfo::resolve() {
  for (size_t i = 0; i < endpoints_.size(); i++) {
    Endpoint& ep = *endpoints_[i];
    if (ep.resolved) {
      continue;
    }
    std::string err;
    const auto& a = cfg_.endpoints[i].address;
    if (network::resolve(a.host, a.port, ep.addr, err)) {
      ep.resolved = true;
    } else {
      SLUICE_LOG(Warn, "upstream", "cluster {}: {}", cfg_.name, err);
    }
  }
}

} // namespace sluice::upstream
