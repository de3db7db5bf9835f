#include "core/upstream/health_checker.h"

#include "core/common/logger.h"
#include "core/common/readiness.h"
#include "core/http/codec.h"
#include "core/network/connection.h"
#include "core/stats/core_metrics.h"
#include "core/stats/registry.h"

#include <random>

namespace sluice::upstream {

class HealthChecker::Probe : public network::ConnectionCallbacks, public http::BodySink {
public:
  Probe(HealthChecker& owner, size_t index)
      : owner_(owner), index_(index), endpoint_(*owner.info_->endpoints()[index]),
        cfg_(*owner.info_->config().health_check),
        parser_(http::MessageType::Response, arena_, 65536), rng_(std::random_device{}()) {
    parser_.setBodySink(this);
    interval_timer_ = owner.dispatcher_.createTimer([this] { check(); });
    timeout_timer_ = owner.dispatcher_.createTimer([this] { done(false, "timeout"); });
    const stats::CoreMetricInfo& m = stats::coreMetric(stats::CoreMetric::UpstreamEndpointHealthy);
    gauge_ = stats::Registry::global().defineGauge(
        m.name, m.help, {{"cluster", owner.info_->name()}, {"endpoint", endpoint_.address}});
    stats::Registry::global().set(gauge_, endpoint_.healthy.load() ? 1 : 0);
  }
  ~Probe() override { closeConnection(); }

  void schedule(uint64_t delay) { interval_timer_->enable(delay); }

  void check() {
    if (!endpoint_.resolved.load(std::memory_order_acquire)) {
      // No address (yet): nothing to probe, and no health verdict; try again next round.
      noteFirst();
      schedule(cfg_.interval_ms);
      return;
    }
    closeConnection();
    conn_ = std::make_unique<network::Connection>(owner_.dispatcher_, *this);
    parser_.reset();
    in_flight_ = true;
    timeout_timer_->enable(cfg_.timeout_ms);
    if (const auto& tls = owner_.info_->tls()) {
      // An HTTPS probe for a TLS cluster.
      if (!conn_->enableTls(*tls, endpoint_.host, endpoint_.host_is_ip)) {
        done(false, "tls");
        return;
      }
    }
    if (conn_->connect(*endpoint_.sockAddr()) != 0) {
      done(false, "connect");
      return;
    }
    network::Buffer& out = conn_->writeBuffer();
    out.append("GET ");
    out.append(cfg_.path);
    out.append(" HTTP/1.1\r\nhost: ");
    out.append(endpoint_.address);
    out.append("\r\nuser-agent: sluice-health-check\r\nconnection: close\r\n\r\n");
    conn_->readEnable(true);
  }

  void onConnected(int status) override {
    if (status != 0) {
      done(false, "connect");
    }
  }
  void onData() override {
    network::Buffer& in = conn_->readBuffer();
    bool head_ready = false;
    http::ParseEvent ev = http::parseStep(parser_, in, head_, &head_ready);
    if (ev == http::ParseEvent::Error) {
      done(false, "bad response");
      return;
    }
    if (head_ready) {
      uint32_t st = parser_.head().status;
      bool ok = false;
      for (uint32_t e : cfg_.expected_statuses) {
        ok = ok || e == st;
      }
      done(ok, ok ? "ok" : "status " + std::to_string(st));
    }
  }
  void onBodyData(std::string_view) override {}
  void onRemoteClose(int) override {
    if (in_flight_) {
      done(false, "closed");
    }
  }

private:
  void closeConnection() {
    if (conn_) {
      conn_->close();
      // Freed after this callback unwinds (we may be inside one of its callbacks).
      struct Holder : event::DeferredDeletable {
        std::unique_ptr<network::Connection> c;
      };
      auto h = std::make_unique<Holder>();
      h->c = std::move(conn_);
      owner_.dispatcher_.deferredDelete(std::move(h));
    }
  }

  void noteFirst() {
    if (!first_noted_) {
      first_noted_ = true;
      owner_.firstResult();
    }
  }

  void done(bool ok, const std::string& why) {
    if (!in_flight_) {
      return;
    }
    in_flight_ = false;
    timeout_timer_->disable();
    closeConnection();
    bool first = checks_++ == 0;
    if (ok) {
      successes_++;
      failures_ = 0;
    } else {
      failures_++;
      successes_ = 0;
    }
    bool healthy = endpoint_.healthy.load();
    if (healthy && !ok && (first || failures_ >= cfg_.unhealthy_threshold)) {
      endpoint_.healthy.store(false);
      SLUICE_LOG(Warn, "health", "cluster {}: endpoint {} is unhealthy ({})", owner_.info_->name(),
                 endpoint_.address, why);
    } else if (!healthy && ok && (first || successes_ >= cfg_.healthy_threshold)) {
      endpoint_.healthy.store(true);
      SLUICE_LOG(Info, "health", "cluster {}: endpoint {} is healthy again", owner_.info_->name(),
                 endpoint_.address);
    }
    stats::Registry::global().set(gauge_, endpoint_.healthy.load() ? 1 : 0);
    noteFirst();
    // Next round with ±10 % jitter so checks of many endpoints do not synchronize.
    uint64_t interval = cfg_.interval_ms;
    uint64_t jitter = interval / 10;
    uint64_t next = interval - jitter + (jitter > 0 ? rng_() % (2 * jitter + 1) : 0);
    schedule(next);
  }

  HealthChecker& owner_;
  size_t index_;
  Endpoint& endpoint_;
  const config::HealthCheckConfig& cfg_;
  http::Arena arena_;
  http::Parser parser_;
  network::Buffer head_;
  std::unique_ptr<network::Connection> conn_;
  event::TimerPtr interval_timer_;
  event::TimerPtr timeout_timer_;
  std::mt19937_64 rng_;
  uint32_t gauge_;
  uint64_t checks_ = 0;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
  bool in_flight_ = false;
  bool first_noted_ = false;
};

HealthChecker::HealthChecker(event::Dispatcher& dispatcher, ClusterInfoPtr info)
    : dispatcher_(dispatcher), info_(std::move(info)) {}

HealthChecker::~HealthChecker() {
  probes_.clear();
  Readiness::global().release(ready_hold_);
}

void HealthChecker::firstResult() {
  if (first_pending_ > 0 && --first_pending_ == 0) {
    Readiness::global().release(ready_hold_);
    ready_hold_ = 0;
  }
}

void HealthChecker::start() {
  if (!info_->config().health_check || info_->endpoints().empty()) {
    return;
  }
  first_pending_ = info_->endpoints().size();
  ready_hold_ = Readiness::global().hold("first health check round of cluster " + info_->name());
  for (size_t i = 0; i < info_->endpoints().size(); i++) {
    probes_.push_back(std::make_unique<Probe>(*this, i));
    probes_.back()->schedule(0); // the first round starts at once, without delaying anything
  }
}

} // namespace sluice::upstream
