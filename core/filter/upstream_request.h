#pragma once

// The upstream half of a stream: picks an endpoint of the routed cluster, enforces the
// cluster's circuit breakers, writes the request to a pooled connection, and on a failure
// retries within the route's attempts and the cluster's retry budget (resending the body it kept)
// or answers 502/503/504 through the stream. It receives the upstream connection's events and
// hands the response to its Stream. Reused across the stream's exchanges: no allocation per
// request.

#include "core/event/dispatcher.h"
#include "core/http/codec.h"
#include "core/network/buffer.h"
#include "core/upstream/pool.h"
#include "sluice/filter.h"

#include <cstdint>
#include <string_view>

namespace sluice::filter {

class Stream;
class WorkerContext;

class UpstreamRequest final : public upstream::ResponseHandler {
public:
  UpstreamRequest(WorkerContext& worker, Stream& stream);
  UpstreamRequest(const UpstreamRequest&) = delete;
  UpstreamRequest& operator=(const UpstreamRequest&) = delete;

  // Forgets the previous exchange (which must have been released).
  void reset();
  // sluice_host_route: the cluster and the route's timeouts and retry policy.
  void setRoute(upstream::ClusterPool* pool, const sluice_route_t& r);
  upstream::ClusterPool* pool() const { return pool_; }

  // The request is ready to go: arms the overall timeout and makes the first try.
  void start();
  // Stamps the start of the upstream exchange (also for bench mode's synthetic upstream).
  void markStart();
  bool attached() const { return up_ != nullptr; }
  upstream::UpstreamConnection* connection() const { return up_; }

  // Request body bytes, framed as the head announced, kept for a retry (not flushed).
  void writeBody(std::string_view data);
  // Writes and flushes; true if the upstream connection is above its high watermark.
  bool forwardBody(std::string_view data);
  // The end of the request (the last chunk, with trailers, when chunked).
  void finishRequest(const http::HeaderMap& trailers);
  // Flushes (and tells the connection once the request is complete); true if the upstream
  // connection is above its high watermark.
  bool flush();
  bool requestDone() const { return request_done_; }
  void setRequestDone() { request_done_ = true; }
  void readEnable(bool enable) {
    if (up_ != nullptr) {
      up_->readEnable(enable);
    }
  }
  void disableTimeout() { timer_->disable(); }
  // Gives the connection back to the pool (or closes it, `abort`).
  void release(bool abort);
  // The stream ended: timers off, connection released, retry budget returned.
  void finish(bool response_complete);

  std::string_view endpointAddress() const { return endpoint_address_; }
  uint64_t startUs() const { return start_us_; }
  uint64_t headUs() const { return head_us_; }

  // upstream::ResponseHandler
  void onResponseHead(http::MessageHead& head) override;
  void onResponseData(std::string_view data) override;
  void onResponseComplete() override;
  void onUpstreamFailure(upstream::Failure f, bool response_started) override;
  void onUpstreamConnected() override { clearPending(); }
  void onUpstreamDrained() override;
  void onTunnelData(std::string_view data) override;
  void onTunnelClosed() override;
  void onReadDone() override;

private:
  bool tryUpstream();
  bool retry();
  // Retries: request body bytes already sent are kept (up to kReplayLimit) to resend them.
  void keepForReplay(std::string_view data);
  bool canResend() const { return !body_sent_ || !replay_overflow_; }
  bool takeRetryBudget();
  void releaseRetryBudget();
  void clearPending();
  void onTimeout();
  void fail(uint32_t status, uint32_t flag, std::string_view body);

  static constexpr size_t kReplayLimit = 64 * 1024;

  WorkerContext& worker_;
  Stream& stream_;
  upstream::ClusterPool* pool_ = nullptr;
  uint32_t timeout_ms_ = 0;
  uint32_t retries_left_ = 0;
  uint32_t retry_on_ = 0;
  uint32_t per_try_timeout_ms_ = 0;
  int last_endpoint_ = -1;
  upstream::UpstreamConnection* up_ = nullptr;
  std::string_view endpoint_address_;
  event::TimerPtr timer_;
  event::TimerPtr try_timer_;
  network::Buffer replay_;
  uint64_t start_us_ = 0;
  uint64_t head_us_ = 0;
  bool chunked_ = false;      // the request body goes upstream chunked
  bool request_done_ = false; // the whole request went upstream
  bool body_sent_ = false;    // some request body went upstream
  bool replay_overflow_ = false;
  bool retry_held_ = false; // counted in the cluster's active_retries
  bool pending_ = false;    // counted in the cluster's pending requests (connection connecting)
};

} // namespace sluice::filter
