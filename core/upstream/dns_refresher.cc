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
  Entry* entry; // null once the entry is gone: the result is dropped
  size_t index;
  uint16_t port;
};

DnsRefresher::DnsRefresher(event::Dispatcher& dispatcher, OnChange on_change)
    : dispatcher_(dispatcher), on_change_(std::move(on_change)) {}

DnsRefresher::~DnsRefresher() {
  for (auto& e : entries_) {
    for (Lookup* l : e->in_flight) {
      l->entry = nullptr; // freed by its callback (libuv runs it, cancelled or not)
      uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));
    }
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
        l->entry = nullptr;
        uv_cancel(reinterpret_cast<uv_req_t*>(&l->req));
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
    auto* l = new Lookup{};
    l->owner = this;
    l->entry = &e;
    l->index = i;
    l->port = eps[i].address.port;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(dispatcher_.loop(), &l->req, &DnsRefresher::onResolved,
                            eps[i].address.host.c_str(), nullptr, &hints);
    if (rc != 0) {
      SLUICE_LOG(Warn, "upstream", "cluster {}: cannot start resolving {}: {}", e.cluster->name(),
                 eps[i].address.text, uv_strerror(rc));
      delete l;
      continue;
    }
    e.in_flight.push_back(l);
  }
}

void DnsRefresher::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* l = reinterpret_cast<Lookup*>(req);
  Entry* e = l->entry;
  if (e != nullptr) {
    e->in_flight.erase(std::find(e->in_flight.begin(), e->in_flight.end(), l));
    ClusterInfo& c = *e->cluster;
    Endpoint& ep = *c.endpoints()[l->index];
    if (status != 0 || res == nullptr) {
      if (status != UV_ECANCELED) {
        SLUICE_LOG(Warn, "upstream", "cluster {}: resolving {} failed ({}); keeping {}", c.name(),
                   ep.address, uv_strerror(status),
                   ep.resolved_text.empty() ? "no address" : ep.resolved_text);
      }
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
        if (l->owner->on_change_) {
          l->owner->on_change_(c.name(), l->index);
        }
      }
    }
  }
  if (res != nullptr) {
    uv_freeaddrinfo(res);
  }
  delete l;
}

} // namespace sluice::upstream
