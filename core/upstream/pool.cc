#include "core/upstream/pool.h"

#include "core/common/logger.h"
#include "core/stats/registry.h"

#include <algorithm>

namespace sluice::upstream {

UpstreamConnection::UpstreamConnection(ClusterPool& pool, size_t endpoint_index)
    : pool_(pool), info_(pool.infoPtr()), endpoint_index_(endpoint_index),
      endpoint_(info_->endpoints()[endpoint_index].get()), conn_(pool.dispatcher(), *this),
      parser_(http::MessageType::Response, arena_, 0) {
  parser_.setBodySink(this);
  endpoint().active_connections.fetch_add(1, std::memory_order_relaxed);
  if (info_->metrics.defined) {
    stats::Registry::global().add(info_->metrics.connections_active, 1);
  }
}

UpstreamConnection::~UpstreamConnection() {
  conn_.close();
  endpoint_->active_connections.fetch_sub(1, std::memory_order_relaxed);
  if (info_->metrics.defined) {
    stats::Registry::global().add(info_->metrics.connections_active, -1);
  }
}

Endpoint& UpstreamConnection::endpoint() {
  return *endpoint_;
}

const std::string& UpstreamConnection::address() const {
  return endpoint_->address;
}

bool UpstreamConnection::start() {
  timer_ = pool_.dispatcher().createTimer([this] {
    if (connecting_) {
      fail(Failure::ConnectTimeout);
    } else if (!busy_) {
      // Idle timeout in the pool.
      closed_ = true;
      pool_.destroy(this);
    }
  });
  addr_generation_ = endpoint().addr_generation.load(std::memory_order_acquire);
  if (const auto& tls = pool_.info().tls()) {
    // The handshake runs once connected; the request waits for it.
    if (!conn_.enableTls(*tls, endpoint().host, endpoint().host_is_ip)) {
      return false;
    }
  }
  int rc = conn_.connect(*endpoint().sockAddr());
  if (rc != 0) {
    return false;
  }
  timer_->enable(pool_.info().config().connect_timeout_ms);
  return true;
}

void UpstreamConnection::attach(ResponseHandler* handler, bool expect_no_body) {
  handler_ = handler;
  busy_ = true;
  response_started_ = response_done_ = request_done_ = false;
  keep_alive_ = true;
  parser_.setExpectNoBody(expect_no_body);
  arena_.reset();
  if (!connecting_) {
    timer_->disable();
  }
  conn_.readEnable(true);
}

void UpstreamConnection::onConnected(int status) {
  connecting_ = false;
  timer_->disable();
  if (status != 0) {
    fail(Failure::ConnectFailure);
    return;
  }
  if (handler_ != nullptr) {
    handler_->onUpstreamConnected();
  }
}

void UpstreamConnection::onData() {
  if (tunnel_) {
    network::Buffer& in = conn_.readBuffer();
    if (handler_ != nullptr) {
      handler_->onTunnelData(in.view());
    }
    in.clear();
    return;
  }
  if (!busy_) {
    // Bytes on an idle connection: the upstream is confused; never reuse it.
    closed_ = true;
    pool_.destroy(this);
    return;
  }
  network::Buffer& in = conn_.readBuffer();
  while (!in.empty() && handler_ != nullptr && !response_done_) {
    bool head_ready = false;
    http::ParseEvent ev = http::parseStep(parser_, in, head_buf_, &head_ready);
    if (ev == http::ParseEvent::Error) {
      fail(Failure::BadResponse);
      return;
    }
    if (head_ready) {
      http::MessageHead& h = parser_.head();
      if (h.status >= 100 && h.status < 200 && h.status != 101) {
        // Interim response (100 Continue from the upstream): sluice answers 100 itself.
        parser_.resume();
        continue;
      }
      response_started_ = true;
      keep_alive_ = h.keep_alive;
      handler_->onResponseHead(h);
      if (handler_ == nullptr || closed_) {
        return;
      }
      if (h.status == 101) {
        return; // the owner decides to tunnel
      }
    }
    if (ev == http::ParseEvent::MessageComplete) {
      response_done_ = true;
      if (!in.empty()) {
        keep_alive_ = false; // unsolicited bytes after the response
      }
      ResponseHandler* h = handler_;
      h->onResponseComplete();
      if (!closed_ && busy_ && handler_ == h) {
        maybeRelease();
      }
      return;
    }
    if (ev == http::ParseEvent::HeadComplete) {
      parser_.resume();
      continue;
    }
    if (ev == http::ParseEvent::NeedMore) {
      break;
    }
  }
  if (handler_ != nullptr && !closed_) {
    handler_->onReadDone();
  }
}

void UpstreamConnection::onBodyData(std::string_view data) {
  if (handler_ != nullptr) {
    handler_->onResponseData(data);
  }
}

void UpstreamConnection::onRemoteClose(int) {
  if (closed_) {
    return;
  }
  if (tunnel_) {
    closed_ = true;
    ResponseHandler* h = handler_;
    handler_ = nullptr;
    if (h != nullptr) {
      h->onTunnelClosed();
    }
    pool_.destroy(this);
    return;
  }
  if (busy_ && handler_ != nullptr && response_started_ && !response_done_ && parser_.finish()) {
    // Body delimited by the connection close.
    response_done_ = true;
    keep_alive_ = false;
    handler_->onResponseComplete();
    closed_ = true;
    handler_ = nullptr;
    pool_.destroy(this);
    return;
  }
  if (busy_ && handler_ != nullptr) {
    fail(connecting_ ? Failure::ConnectFailure : Failure::Reset);
    return;
  }
  closed_ = true;
  pool_.destroy(this);
}

void UpstreamConnection::onWriteDrained() {
  if (handler_ != nullptr) {
    handler_->onUpstreamDrained();
  }
}

void UpstreamConnection::fail(Failure f) {
  if (closed_) {
    return;
  }
  closed_ = true;
  conn_.close(true);
  ResponseHandler* h = handler_;
  handler_ = nullptr;
  bool started = response_started_;
  pool_.destroy(this);
  if (h != nullptr) {
    h->onUpstreamFailure(f, started);
  }
}

void UpstreamConnection::done() {
  if (request_done_ && response_done_ && !closed_) {
    maybeRelease();
  } else {
    abort();
  }
}

void UpstreamConnection::requestComplete() {
  request_done_ = true;
  maybeRelease();
}

void UpstreamConnection::abort() {
  handler_ = nullptr;
  if (!closed_) {
    closed_ = true;
    conn_.close(true);
    pool_.destroy(this);
  }
}

void UpstreamConnection::startTunnel() {
  tunnel_ = true;
  parser_.resume();
  network::Buffer& in = conn_.readBuffer();
  if (!in.empty() && handler_ != nullptr) {
    handler_->onTunnelData(in.view());
    in.clear();
  }
}

// Called by the owner when it no longer needs the response (after onResponseComplete).
void UpstreamConnection::maybeRelease() {
  if (!request_done_ || !response_done_ || closed_) {
    return;
  }
  handler_ = nullptr;
  busy_ = false;
  if (keep_alive_ && conn_.readBuffer().empty() && conn_.pendingBytes() == 0) {
    parser_.resume();
    pool_.release(this);
  } else {
    closed_ = true;
    pool_.destroy(this);
  }
}

void UpstreamConnection::setIdle() {
  timer_->enable(pool_.info().config().pool.idle_timeout_ms);
}

ClusterPool::ClusterPool(event::Dispatcher& dispatcher, ClusterInfoPtr info)
    : dispatcher_(dispatcher), info_(std::move(info)),
      rng_(reinterpret_cast<uintptr_t>(this) * 0x9E3779B97F4A7C15ull | 1) {
  idle_.resize(info_->endpoints().size());
  current_weight_.assign(info_->endpoints().size(), 0);
  // Workers start at different places in the schedule so they do not all pick the same
  // endpoint first.
  if (!info_->rrSchedule().empty()) {
    rr_cursor_ = static_cast<size_t>(nextRandom() % info_->rrSchedule().size());
  }
}

ClusterPool::~ClusterPool() {
  closeAll();
}

int ClusterPool::pickEndpoint(int exclude, uint64_t hash, bool has_hash) {
  switch (info_->config().lb_policy) {
  case config::LbPolicy::RoundRobin:
    return pickRoundRobin(exclude);
  case config::LbPolicy::Random:
    return pickRandom(exclude);
  case config::LbPolicy::LeastRequest:
    return pickLeastRequest(exclude);
  case config::LbPolicy::RingHash:
  case config::LbPolicy::Maglev: {
    if (!has_hash) {
      return pickRoundRobin(exclude);
    }
    // A retry moves the key on to the next slot so it lands on another endpoint.
    uint64_t h = exclude >= 0 ? hash + 0x9e3779b97f4a7c15ull : hash;
    int e = info_->config().lb_policy == config::LbPolicy::RingHash ? info_->ringLookup(h)
                                                                    : info_->maglevLookup(h);
    if (e == exclude && exclude >= 0) {
      int other = pickRoundRobin(exclude);
      return other >= 0 ? other : e;
    }
    return e;
  }
  }
  return -1;
}

uint64_t ClusterPool::nextRandom() {
  uint64_t x = rng_;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_ = x;
  return x;
}

int ClusterPool::pickRandom(int exclude, int also) {
  auto& eps = info_->endpoints();
  auto eligible = [&](size_t i) {
    return eps[i]->available() && static_cast<int>(i) != exclude && static_cast<int>(i) != also;
  };
  // Weighted draws over every endpoint (binary search in the cumulative weights), rejecting
  // unavailable ones: unbiased among the available, O(log n) while most are available.
  const std::vector<uint64_t>& cum = info_->cumulativeWeights();
  if (!cum.empty() && cum.back() > 0) {
    for (int attempt = 0; attempt < 8; attempt++) {
      uint64_t r = nextRandom() % cum.back();
      size_t i = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
      if (i < eps.size() && eligible(i)) {
        return static_cast<int>(i);
      }
    }
  }
  uint64_t total = 0;
  for (size_t i = 0; i < eps.size(); i++) {
    if (eligible(i)) {
      total += eps[i]->weight;
    }
  }
  if (total == 0) {
    return exclude >= 0 && also < 0 ? pickRandom(-1) : -1;
  }
  uint64_t pick = nextRandom() % total;
  for (size_t i = 0; i < eps.size(); i++) {
    if (eligible(i)) {
      if (pick < eps[i]->weight) {
        return static_cast<int>(i);
      }
      pick -= eps[i]->weight;
    }
  }
  return -1;
}

int ClusterPool::pickLeastRequest(int exclude) {
  // Power of two choices, weight-aware: of two distinct weighted-random candidates, the one with
  // fewer active requests per unit of weight. The active counts live in the shared endpoint
  // state (relaxed atomics that every worker's streams update), so the choice sees the requests
  // of the whole process. The second candidate is drawn without replacement: drawing it with
  // replacement would compare an endpoint with itself, and with two endpoints a slow one would
  // get a quarter of the requests whatever its load.
  int a = pickRandom(exclude);
  if (a < 0) {
    return -1;
  }
  int b = pickRandom(exclude, a);
  if (b < 0) {
    return a;
  }
  auto& eps = info_->endpoints();
  auto load = [&](int i) {
    return static_cast<double>(eps[i]->active_requests.load(std::memory_order_relaxed) + 1) /
           eps[i]->weight;
  };
  return load(b) < load(a) ? b : a;
}

int ClusterPool::pickRoundRobin(int exclude) {
  auto& eps = info_->endpoints();
  // The precomputed schedule: O(1) while the next endpoints in it are available.
  const std::vector<uint32_t>& sched = info_->rrSchedule();
  if (!sched.empty()) {
    size_t tries = std::min<size_t>(sched.size(), 64);
    for (size_t t = 0; t < tries; t++) {
      uint32_t i = sched[rr_cursor_];
      if (++rr_cursor_ == sched.size()) {
        rr_cursor_ = 0;
      }
      if (eps[i]->available() && static_cast<int>(i) != exclude) {
        return static_cast<int>(i);
      }
    }
  }
  // Many unavailable in a row (or no schedule): smooth weighted round robin over all of them
  // (as in nginx), O(n).
  int64_t total = 0;
  int best = -1;
  for (size_t i = 0; i < eps.size(); i++) {
    const Endpoint& ep = *eps[i];
    if (!ep.available() || static_cast<int>(i) == exclude) {
      continue;
    }
    current_weight_[i] += ep.weight;
    total += ep.weight;
    if (best < 0 || current_weight_[i] > current_weight_[best]) {
      best = static_cast<int>(i);
    }
  }
  if (best < 0 && exclude >= 0) {
    return pickRoundRobin(-1);
  }
  if (best >= 0) {
    current_weight_[best] -= total;
  }
  return best;
}

UpstreamConnection* ClusterPool::acquire(size_t endpoint_index) {
  auto& idle = idle_[endpoint_index];
  while (!idle.empty()) {
    UpstreamConnection* c = idle.back();
    idle.pop_back();
    if (!c->closed_ &&
        c->addr_generation_ ==
            info_->endpoints()[endpoint_index]->addr_generation.load(std::memory_order_relaxed)) {
      return c;
    }
    if (!c->closed_) {
      // Made to an address the endpoint no longer resolves to.
      c->closed_ = true;
      destroy(c);
    }
  }
  if (all_.size() >= info_->config().pool.max_connections) {
    return nullptr;
  }
  auto c = std::make_unique<UpstreamConnection>(*this, endpoint_index);
  UpstreamConnection* raw = c.get();
  all_.push_front(std::move(c));
  raw->self_ = all_.begin();
  if (!raw->start()) {
    raw->closed_ = true;
    raw->connecting_ = false;
    // Report as a connect failure through the normal path once attached: keep it simple and
    // let the caller see an immediate failure.
    destroy(raw);
    return nullptr;
  }
  return raw;
}

void ClusterPool::release(UpstreamConnection* c) {
  auto& idle = idle_[c->endpoint_index_];
  const Endpoint& ep = *info_->endpoints()[c->endpoint_index_];
  if (retired_ || idle.size() >= info_->config().pool.max_idle_per_worker || !ep.available() ||
      c->addr_generation_ != ep.addr_generation.load(std::memory_order_relaxed)) {
    c->closed_ = true;
    destroy(c);
    return;
  }
  c->setIdle();
  idle.push_back(c);
}

void ClusterPool::destroy(UpstreamConnection* c) {
  auto& idle = idle_[c->endpoint_index_];
  for (size_t i = 0; i < idle.size(); i++) {
    if (idle[i] == c) {
      idle.erase(idle.begin() + static_cast<long>(i));
      break;
    }
  }
  c->conn_.close();
  if (c->timer_) {
    c->timer_->disable();
  }
  std::unique_ptr<UpstreamConnection> owned = std::move(*c->self_);
  all_.erase(c->self_);
  dispatcher_.deferredDelete(std::move(owned));
}

void ClusterPool::closeAll() {
  while (!all_.empty()) {
    UpstreamConnection* c = all_.front().get();
    c->closed_ = true;
    c->handler_ = nullptr;
    destroy(c);
  }
}

void ClusterPool::closeIdle(size_t endpoint_index) {
  if (endpoint_index >= idle_.size()) {
    return;
  }
  std::vector<UpstreamConnection*> list;
  list.swap(idle_[endpoint_index]);
  for (UpstreamConnection* c : list) {
    c->closed_ = true;
    destroy(c);
  }
}

void ClusterPool::retire() {
  retired_ = true;
  for (auto& idle : idle_) {
    std::vector<UpstreamConnection*> list;
    list.swap(idle);
    for (UpstreamConnection* c : list) {
      c->closed_ = true;
      destroy(c);
    }
  }
}

void ClusterManager::setCluster(ClusterInfoPtr info) {
  auto it = pools_.find(info->name());
  if (it != pools_.end()) {
    if (&it->second->info() == info.get()) {
      return;
    }
    it->second->retire();
    it->second = std::make_shared<ClusterPool>(dispatcher_, std::move(info));
    return;
  }
  std::string name = info->name();
  pools_[name] = std::make_shared<ClusterPool>(dispatcher_, std::move(info));
}

void ClusterManager::retainOnly(const std::vector<std::string>& names) {
  for (auto it = pools_.begin(); it != pools_.end();) {
    if (std::find(names.begin(), names.end(), it->first) == names.end()) {
      it->second->retire();
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

ClusterPool* ClusterManager::find(std::string_view name) {
  auto it = pools_.find(name);
  return it == pools_.end() ? nullptr : it->second.get();
}

ClusterPoolPtr ClusterManager::findShared(std::string_view name) {
  auto it = pools_.find(name);
  return it == pools_.end() ? nullptr : it->second;
}

void ClusterManager::closeAll() {
  for (auto& [n, p] : pools_) {
    p->closeAll();
  }
}

} // namespace sluice::upstream
