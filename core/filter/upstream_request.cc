#include "core/filter/upstream_request.h"

#include "core/filter/stream.h"
#include "core/filter/stream_stats.h"
#include "core/filter/worker_context.h"

#include <algorithm>
#include <cstddef>

namespace sluice::filter {

UpstreamRequest::UpstreamRequest(WorkerContext& worker, Stream& stream)
    : worker_(worker), stream_(stream) {
  timer_ = worker_.dispatcher().createTimer([this] { onTimeout(); });
  try_timer_ = worker_.dispatcher().createTimer([this] {
    if (stream_.active() && up_ != nullptr && !stream_.responseStarted()) {
      stream_.addFlags(SLUICE_FLAG_UPSTREAM_TIMEOUT);
      onUpstreamFailure(upstream::Failure::ConnectTimeout, false);
    }
  });
}

void UpstreamRequest::reset() {
  pool_ = nullptr;
  timeout_ms_ = retries_left_ = retry_on_ = per_try_timeout_ms_ = 0;
  last_endpoint_ = -1;
  up_ = nullptr;
  endpoint_address_ = {};
  replay_.clear();
  start_us_ = head_us_ = 0;
  chunked_ = request_done_ = body_sent_ = replay_overflow_ = pending_ = false;
}

void UpstreamRequest::setRoute(upstream::ClusterPool* pool, const sluice_route_t& r) {
  pool_ = pool;
  timeout_ms_ = r.timeout_ms;
  retries_left_ = r.retry_attempts;
  retry_on_ = r.retry_on;
  // A filter built against a header older than per_try_timeout_ms passes a shorter struct.
  per_try_timeout_ms_ = r.size >= offsetof(sluice_route_t, per_try_timeout_ms) + sizeof(uint32_t)
                            ? r.per_try_timeout_ms
                            : 0;
}

void UpstreamRequest::markStart() {
  start_us_ = stats::monotonicUs();
}

void UpstreamRequest::start() {
  if (timeout_ms_ > 0) {
    timer_->enable(timeout_ms_);
  }
  tryUpstream();
}

namespace {
void appendBody(network::Buffer& out, std::string_view data, bool chunked) {
  if (chunked) {
    http::appendChunk(out, data);
  } else {
    out.append(data);
  }
}
} // namespace

bool UpstreamRequest::tryUpstream() {
  upstream::ClusterInfo& info = pool_->info();
  const config::ClusterConfig& cc = info.config();
  const http::MessageHead& req = stream_.request();
  uint64_t hash = 0;
  bool has_hash = false;
  if (cc.hash_on) {
    std::string_view key = cc.hash_on->client_ip ? std::string_view(stream_.owner().peerIp())
                                                 : req.headers.get(cc.hash_on->header);
    if (!key.empty()) {
      hash = upstream::hashKey(key);
      has_hash = true;
    }
  }
  int ep = pool_->pickEndpoint(last_endpoint_, hash, has_hash);
  if (ep < 0) {
    fail(503, SLUICE_FLAG_NO_HEALTHY_UPSTREAM, "no healthy upstream\n");
    return false;
  }
  // Circuit breakers: requests in flight and requests waiting for a connection, per cluster
  // across all workers.
  if (info.active_requests.load(std::memory_order_relaxed) >=
          static_cast<int64_t>(cc.circuit_breaker.max_requests) ||
      info.pending_requests.load(std::memory_order_relaxed) >=
          static_cast<int64_t>(cc.circuit_breaker.max_pending)) {
    stats::recordUpstreamError(worker_, pool_, "overflow");
    fail(503, SLUICE_FLAG_UPSTREAM_OVERFLOW, "upstream overflow\n");
    return false;
  }
  upstream::UpstreamConnection* c = pool_->acquire(static_cast<size_t>(ep));
  if (c == nullptr) {
    stats::recordUpstreamError(worker_, pool_, "overflow");
    fail(503, SLUICE_FLAG_UPSTREAM_OVERFLOW, "upstream connection limit reached\n");
    return false;
  }
  up_ = c;
  last_endpoint_ = ep;
  endpoint_address_ = c->address();
  c->endpoint().active_requests.fetch_add(1, std::memory_order_relaxed);
  info.active_requests.fetch_add(1, std::memory_order_relaxed);
  if (!c->connected()) {
    pending_ = true;
    info.pending_requests.fetch_add(1, std::memory_order_relaxed);
  }
  c->attach(this, stream_.isHead());
  chunked_ = stream_.writeUpstreamHead(c->out());
  if (per_try_timeout_ms_ > 0) {
    try_timer_->enable(per_try_timeout_ms_);
  }
  if (up_ != nullptr && (req.no_body || stream_.upgrading())) {
    request_done_ = true;
    up_->flush();
    up_->requestComplete();
  } else if (up_ != nullptr) {
    if (!replay_.empty()) {
      // A retry: resend the body the previous try got.
      appendBody(up_->out(), replay_.view(), chunked_);
    }
    if (retry_held_ && stream_.requestForwarded() && !request_done_) {
      finishRequest(req.trailers);
      flush();
    } else {
      up_->flush();
    }
  }
  return true;
}

void UpstreamRequest::writeBody(std::string_view data) {
  body_sent_ = true;
  keepForReplay(data);
  appendBody(up_->out(), data, chunked_);
}

bool UpstreamRequest::forwardBody(std::string_view data) {
  writeBody(data);
  up_->flush();
  return up_ != nullptr && up_->aboveHighWatermark();
}

void UpstreamRequest::finishRequest(const http::HeaderMap& trailers) {
  if (!request_done_) {
    if (chunked_) {
      http::appendLastChunk(up_->out(), &trailers);
    }
    request_done_ = true;
  }
}

bool UpstreamRequest::flush() {
  up_->flush();
  if (up_ != nullptr && request_done_) {
    up_->requestComplete();
  }
  return up_ != nullptr && up_->aboveHighWatermark();
}

void UpstreamRequest::keepForReplay(std::string_view data) {
  if (retries_left_ == 0 || replay_overflow_) {
    return;
  }
  if (replay_.readable() + data.size() > kReplayLimit) {
    replay_overflow_ = true;
    replay_.clear();
    return;
  }
  replay_.append(data);
}

bool UpstreamRequest::takeRetryBudget() {
  upstream::ClusterInfo& info = pool_->info();
  const config::CircuitBreakerConfig& cb = info.config().circuit_breaker;
  if (!retry_held_) {
    int64_t active = info.active_requests.load(std::memory_order_relaxed);
    int64_t limit = std::max<int64_t>(cb.min_retry_concurrency,
                                      active * static_cast<int64_t>(cb.retry_budget_percent) / 100);
    if (info.active_retries.load(std::memory_order_relaxed) >= limit) {
      stats::recordRetry(pool_, false);
      return false;
    }
    info.active_retries.fetch_add(1, std::memory_order_relaxed);
    retry_held_ = true;
  }
  stats::recordRetry(pool_, true);
  return true;
}

void UpstreamRequest::releaseRetryBudget() {
  if (retry_held_) {
    retry_held_ = false;
    pool_->info().active_retries.fetch_sub(1, std::memory_order_relaxed);
  }
}

bool UpstreamRequest::retry() {
  retries_left_--;
  request_done_ = false;
  chunked_ = false;
  return tryUpstream();
}

void UpstreamRequest::clearPending() {
  if (pending_) {
    pending_ = false;
    pool_->info().pending_requests.fetch_sub(1, std::memory_order_relaxed);
  }
}

void UpstreamRequest::onTimeout() {
  if (!stream_.active()) {
    return;
  }
  stream_.addFlags(SLUICE_FLAG_UPSTREAM_TIMEOUT);
  stats::recordUpstreamError(worker_, pool_, "timeout");
  if (stream_.responseStarted()) {
    stream_.endAbruptly();
    return;
  }
  release(true);
  stream_.sendLocalReply(504, "upstream request timeout\n", 0);
}

void UpstreamRequest::release(bool abort) {
  try_timer_->disable();
  if (up_ == nullptr) {
    return;
  }
  upstream::UpstreamConnection* c = up_;
  up_ = nullptr;
  c->endpoint().active_requests.fetch_sub(1, std::memory_order_relaxed);
  clearPending();
  pool_->info().active_requests.fetch_sub(1, std::memory_order_relaxed);
  if (abort) {
    c->abort();
  } else {
    c->done();
  }
}

void UpstreamRequest::finish(bool response_complete) {
  timer_->disable();
  try_timer_->disable();
  if (up_ != nullptr) {
    release(!(request_done_ && response_complete));
  }
  releaseRetryBudget();
}

void UpstreamRequest::fail(uint32_t status, uint32_t flag, std::string_view body) {
  stream_.addFlags(flag);
  release(true);
  stream_.sendLocalReply(status, body, 0);
}

void UpstreamRequest::onUpstreamFailure(upstream::Failure f, bool response_started) {
  if (!stream_.active()) {
    return;
  }
  if (up_ != nullptr) {
    up_->endpoint().active_requests.fetch_sub(1, std::memory_order_relaxed);
    pool_->info().active_requests.fetch_sub(1, std::memory_order_relaxed);
    clearPending();
    up_ = nullptr; // the connection is already closed
  }
  try_timer_->disable();
  bool timed_out = (stream_.flags() & SLUICE_FLAG_UPSTREAM_TIMEOUT) != 0;
  uint32_t cause = 0;
  const char* kind = "reset";
  switch (f) {
  case upstream::Failure::ConnectFailure:
    cause = SLUICE_RETRY_CONNECT_FAILURE;
    kind = "connect_failure";
    break;
  case upstream::Failure::ConnectTimeout:
    cause = timed_out ? SLUICE_RETRY_TIMEOUT : SLUICE_RETRY_CONNECT_FAILURE;
    kind = timed_out ? "timeout" : "connect_failure";
    break;
  case upstream::Failure::Reset:
  case upstream::Failure::BadResponse:
    cause = SLUICE_RETRY_RESET;
    break;
  }
  stats::recordUpstreamError(worker_, pool_, kind);
  if (last_endpoint_ >= 0 && cause != SLUICE_RETRY_TIMEOUT) {
    pool_->info().recordOutcome(static_cast<size_t>(last_endpoint_), true);
  }
  if (response_started || stream_.responseStarted()) {
    stream_.addFlags(SLUICE_FLAG_UPSTREAM_RESET);
    stream_.endAbruptly();
    return;
  }
  if (retries_left_ > 0 && (retry_on_ & cause) && canResend() && takeRetryBudget()) {
    retry();
    return;
  }
  if (cause == SLUICE_RETRY_TIMEOUT) {
    stream_.sendLocalReply(504, "upstream request timeout\n", 0);
  } else if (cause == SLUICE_RETRY_CONNECT_FAILURE) {
    stream_.addFlags(SLUICE_FLAG_UPSTREAM_CONNECT_FAILURE);
    stream_.sendLocalReply(502, "upstream connect error\n", 0);
  } else {
    stream_.addFlags(SLUICE_FLAG_UPSTREAM_RESET);
    stream_.sendLocalReply(502, "upstream reset before response\n", 0);
  }
}

void UpstreamRequest::onResponseHead(http::MessageHead& head) {
  if (!stream_.active()) {
    return;
  }
  try_timer_->disable();
  head_us_ = stats::monotonicUs();
  stats::recordUpstreamDuration(pool_, head_us_ - start_us_);
  if (last_endpoint_ >= 0) {
    pool_->info().recordOutcome(static_cast<size_t>(last_endpoint_), head.status >= 500);
  }
  if (head.status >= 500 && (retry_on_ & SLUICE_RETRY_5XX) && retries_left_ > 0 && canResend() &&
      request_done_ && takeRetryBudget()) {
    release(true);
    retry();
    return;
  }
  stream_.onUpstreamHead(head);
}

void UpstreamRequest::onResponseData(std::string_view data) {
  stream_.onResponseData(data);
}

void UpstreamRequest::onResponseComplete() {
  stream_.onResponseComplete();
}

void UpstreamRequest::onUpstreamDrained() {
  stream_.owner().readDisableDownstream(false);
}

void UpstreamRequest::onTunnelData(std::string_view data) {
  stream_.onTunnelData(data);
}

void UpstreamRequest::onTunnelClosed() {
  up_ = nullptr;
  stream_.owner().onTunnelClosed();
}

void UpstreamRequest::onReadDone() {
  stream_.owner().flushDownstream();
}

} // namespace sluice::filter
