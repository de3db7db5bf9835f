#include "core/upstream/dns_refresher.h"

#include "core/common/logger.h"

#include <algorithm>
#include <cstring>

#include <netdb.h>
#include <netinet/in.h>

namespace sluice::upstream {

struct DnsRefresher::Lookup {
  uv_getaddrinfo_t req;
  DnsRefresher* owner;
  ClusterInfoPtr cluster;
  Entry* entry = nullptr;       // periodic refresh: the entry that started it
  std::shared_ptr<Round> round; // first round: the round it belongs to
  bool dropped = false;         // the result is dropped (entry or refresher gone)
  size_t index;
  uint16_t port;
};

void DnsRefresher::drop(Lookup* l) {
  l->dropped = true; // freed by its callback (libuv runs it, cancelled or not)
  uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));
}

DnsRefresher::DnsRefresher(event::Dispatcher& dispatcher, OnChange on_change)
    : dispatcher_(dispatcher), on_change_(std::move(on_change)) {}

DnsRefresher::~DnsRefresher() {
  for (auto& e : entries_) {
    for (Lookup* l : e->in_flight) {
      drop(l);
    }
  }
  for (Lookup* l : first_round_) {
    drop(l);
  }
}

void DnsRefresher::sync(const std::vector<ClusterInfoPtr>& clusters) {
  std::vector<std::unique_ptr<Entry>> next;
  for (const auto& c : clusters) {
    bool hostnames = std::any_of(c->config().endpoints.begin(), c->config().endpoints.end(),
                                 [](const config::EndpointConfig& e) { return !e.address.is_ip; });
    if (!hostnames) {
      continue;
    }
    std::unique_ptr<Entry> kept;
    for (auto& e : entries_) {
      if (e && e->cluster == c) {
        kept = std::move(e);
      }
    }
    if (!kept) {
      kept = std::make_unique<Entry>();
      kept->cluster = c;
      Entry* raw = kept.get();
      kept->timer = dispatcher_.createTimer([this, raw] {
        refresh(*raw);
        raw->timer->enable(raw->cluster->config().dns_refresh_ms);
      });
      kept->timer->enable(c->config().dns_refresh_ms);
    }
    next.push_back(std::move(kept));
  }
  for (auto& e : entries_) {
    if (e) {
      for (Lookup* l : e->in_flight) {
        drop(l);
      }
    }
  }
  entries_ = std::move(next);
}

void DnsRefresher::refreshAll() {
  for (auto& e : entries_) {
    refresh(*e);
  }
}

size_t DnsRefresher::lookupsInFlight() const {
  size_t n = 0;
  for (const auto& e : entries_) {
    n += e->in_flight.size();
  }
  return n;
}

void DnsRefresher::refresh(Entry& e) {
  const auto& eps = e.cluster->config().endpoints;
  for (size_t i = 0; i < eps.size(); i++) {
    if (eps[i].address.is_ip) {
      continue;
    }
    bool busy = std::any_of(e.in_flight.begin(), e.in_flight.end(),
                            [&](const Lookup* l) { return l->index == i; });
    if (busy) {
      continue; // the previous lookup of this endpoint has not answered yet
    }
    if (Lookup* l = startLookup(e.cluster, i)) {
      l->entry = &e;
      e.in_flight.push_back(l);
    }
  }
}

size_t DnsRefresher::resolveFirst(const std::vector<ClusterInfoPtr>& clusters,
                                  std::function<void()> done) {
  auto round = std::make_shared<Round>();
  round->done = std::move(done);
  for (const auto& c : clusters) {
    const auto& eps = c->config().endpoints;
    for (size_t i = 0; i < eps.size(); i++) {
      if (eps[i].address.is_ip || c->endpoints()[i]->resolved.load()) {
        continue;
      }
      if (Lookup* l = startLookup(c, i)) {
        l->round = round;
        round->pending++;
        first_round_.push_back(l);
      }
    }
  }
  return round->pending;
}

std::vector<std::string> DnsRefresher::firstRoundPending() const {
  std::vector<std::string> out;
  for (const Lookup* l : first_round_) {
    out.push_back(l->cluster->name() + "/" + l->cluster->config().endpoints[l->index].address.text);
  }
  return out;
}

DnsRefresher::Lookup* DnsRefresher::startLookup(const ClusterInfoPtr& cluster, size_t index) {
  const auto& ep = cluster->config().endpoints[index];
  auto* l = new Lookup{};
  l->owner = this;
  l->cluster = cluster;
  l->index = index;
  l->port = ep.address.port;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(dispatcher_.loop(), &l->req, &DnsRefresher::onResolved,
                          ep.address.host.c_str(), nullptr, &hints);
  if (rc != 0) {
    SLUICE_LOG(Warn, "upstream", "cluster {}: cannot start resolving {}: {}", cluster->name(),
               ep.address.text, uv_strerror(rc));
    delete l;
    return nullptr;
  }
  return l;
}

void DnsRefresher::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  std::unique_ptr<Lookup> l(reinterpret_cast<Lookup*>(req));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> answer(res, [](addrinfo* a) {
    if (a != nullptr) {
      uv_freeaddrinfo(a);
    }
  });
  if (l->dropped) {
    return;
  }
  DnsRefresher* self = l->owner;
  if (l->entry != nullptr) {
    auto& v = l->entry->in_flight;
    v.erase(std::find(v.begin(), v.end(), l.get()));
  } else {
    auto& v = self->first_round_;
    v.erase(std::find(v.begin(), v.end(), l.get()));
  }
  ClusterInfo& c = *l->cluster;
  Endpoint& ep = *c.endpoints()[l->index];
  if (status != 0 || res == nullptr) {
    SLUICE_LOG(Warn, "upstream", "cluster {}: resolving {} failed ({}); keeping {}", c.name(),
               ep.address, uv_strerror(status),
               ep.resolved_text.empty() ? "no address" : ep.resolved_text);
  } else {
    network::SockAddr sa;
    network::fromAddrinfo(res, l->port, sa);
    std::string text = network::formatAddress(sa.get());
    if (text != ep.resolved_text) {
      std::string old = ep.resolved_text;
      ep.setSockAddr(sa, text);
      SLUICE_LOG(Info, "upstream", "cluster {}: {} now resolves to {} (was {}); draining {}",
                 c.name(), ep.address, text, old.empty() ? "unresolved" : old,
                 old.empty() ? "nothing" : old);
      if (self->on_change_) {
        self->on_change_(c.name(), l->index);
      }
    }
  }
  if (l->round && --l->round->pending == 0) {
    auto done = std::move(l->round->done);
    done(); // may sync or destroy anything of this refresher: nothing of it is touched after
  }
}

} // namespace sluice::upstream
