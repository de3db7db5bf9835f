#pragma once

// One HTTP exchange on a downstream connection: runs the listener's filter chain through the C
// ABI (request hooks in order, response hooks in reverse), sends the request to the routed
// cluster and streams the response back. A connection reuses one Stream object for every
// request it serves, so steady state does not allocate.

#include "core/filter/worker_context.h"
#include "core/http/codec.h"
#include "core/network/buffer.h"
#include "core/upstream/pool.h"
#include "sluice/filter.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filter {

// What a stream needs from its downstream connection.
class StreamOwner {
public:
  virtual ~StreamOwner() = default;
  virtual network::Buffer& downstreamOut() = 0;
  virtual void flushDownstream() = 0;
  virtual bool downstreamAboveHighWatermark() const = 0;
  virtual void readDisableDownstream(bool disable) = 0;
  // The stream ended; the connection continues (keep-alive) or closes.
  virtual void onStreamDone(bool close_connection) = 0;
  // A 101 was relayed: bytes now flow raw between the two connections.
  virtual void onTunnelStart(upstream::UpstreamConnection* up) = 0;
  virtual void onTunnelData(std::string_view data) = 0;
  virtual void onTunnelClosed() = 0;
  virtual const std::string& peerAddress() const = 0;
  virtual const std::string& peerIp() const = 0;
  virtual bool draining() const { return false; }
};

struct ActiveFilter {
  const FilterInstance* instance;
  void* worker_state;
  void* object; // from sluice_on_stream_new; null = filter skipped for this stream
};

// The filter whose code this thread is running (null outside filter code), for crash reports and
// error messages: set around every hook, worker-state and stream-object call, and around every
// callback the host delivers to a filter (timers, posted work, HTTP call answers, fd watches),
// which inherit the filter that was running when they were registered.
const FilterInstance* runningFilter();
class RunningFilterScope {
public:
  explicit RunningFilterScope(const FilterInstance* f);
  ~RunningFilterScope();
  RunningFilterScope(const RunningFilterScope&) = delete;
  RunningFilterScope& operator=(const RunningFilterScope&) = delete;

private:
  const FilterInstance* outer_;
};

class Stream : public upstream::ResponseHandler {
public:
  Stream(WorkerContext& worker, StreamOwner& owner);
  ~Stream() override;

  // Starts an exchange for a parsed request head (views into the connection's head buffer).
  void begin(const WorkerSnapshotPtr& snap, size_t listener_index, http::MessageHead& head,
             uint64_t start_mono_ms);
  // Request body bytes (already de-chunked).
  void onRequestData(std::string_view data);
  void onRequestEnd();
  // The client went away or the connection must die: cancel everything, log, finish.
  void onDownstreamReset();
  // The downstream write queue drained below its low watermark.
  void onDownstreamDrained();
  bool active() const { return active_; }
  bool responseStarted() const { return response_started_; }
  // Answer locally (used by the connection for protocol errors too).
  void sendLocalReply(uint32_t status, std::string_view body, uint32_t flags,
                      const sluice_header_t* headers = nullptr, size_t header_count = 0);

  // --- used by the ABI bridge ---
  http::HeaderMap* headerMap(sluice_header_map_t map);
  bool getHeader(sluice_header_map_t map, std::string_view name, size_t index,
                 std::string_view* out);
  void setHeader(sluice_header_map_t map, std::string_view name, std::string_view value,
                 bool append);
  size_t removeHeader(sluice_header_map_t map, std::string_view name);
  network::Buffer& bodyBuffer(sluice_direction_t dir) {
    return dir == SLUICE_DIRECTION_REQUEST ? req_body_ : resp_body_;
  }
  bool route(const sluice_route_t* r);
  void resume(sluice_direction_t dir);
  void addFlags(uint32_t f) { flags_ |= f; }
  bool metadataGet(std::string_view key, std::string_view* value) const;
  void metadataSet(std::string_view key, std::string_view value);
  bool metadataAt(size_t i, std::string_view* key, std::string_view* value) const;
  void fillInfo(sluice_stream_info_t* info);
  // A local reply from a filter that will be taken (none sent yet), and its `details`.
  bool acceptsLocalReply() const { return active_ && !local_reply_; }
  void setResponseDetails(std::string_view details) { response_details_ = arena_.copy(details); }
  WorkerContext& worker() { return worker_; }
  http::Arena& arena() { return arena_; }
  sluice_stream_t* handle() { return reinterpret_cast<sluice_stream_t*>(this); }
  static Stream* from(sluice_stream_t* s) { return reinterpret_cast<Stream*>(s); }

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

  // Index of the filter whose hook is running (for local replies), or SIZE_MAX.
  size_t currentFilter() const { return cur_filter_; }

  // Head of this stream's pending ABI timers and posted tasks (an intrusive list the worker
  // context maintains), so ending the stream cancels them in O(own timers), allocation-free.
  AbiTimer*& abiTimers() { return abi_timers_; }

private:
  using HookFn = sluice_status_t (*)(void*, sluice_stream_t*, bool);
  // Runs one stream hook of filter i with the bookkeeping every hook needs; an invalid status
  // (with check_status) ends the stream with 500.
  sluice_status_t runHook(size_t i, HookFn hook, bool end_stream, bool check_status);
  template <typename Call> sluice_status_t guardHook(size_t i, Call&& call, bool check_status);
  // The trailers hooks of a complete message; false if the stream ended meanwhile.
  bool runTrailerHooks(sluice_direction_t dir);
  bool afterHook();
  void clearPending();
  enum class Pause { None, Stop, Buffer };
  void runRequestHeaders(size_t from);
  void requestHeadersDone();
  void runRequestBody(size_t from, bool end);
  void forwardRequestBody(bool end);
  void startUpstream();
  void respondSynthetic();
  // Retries: request body bytes already sent are kept (up to kReplayLimit) to resend them.
  void keepForReplay(std::string_view data);
  bool canResend() const { return !req_body_sent_ || !replay_overflow_; }
  bool takeRetryBudget();
  void releaseRetryBudget();
  bool tryUpstream();
  void writeUpstreamHead();
  void runResponseHeaders(size_t from_top);
  void runResponseBody(size_t from_top, bool end);
  void sendResponseHead();
  void sendResponseBody(std::string_view data, bool end);
  void finishResponse();
  void complete(bool close_connection);
  void upstreamTimeout();
  void failUpstream(uint32_t status, uint32_t flag, std::string_view body);
  void releaseUpstream(bool abort);
  std::string_view generateRequestId();

  WorkerContext& worker_;
  StreamOwner& owner_;
  AbiTimer* abi_timers_ = nullptr;
  http::Arena arena_;
  WorkerSnapshotPtr snap_;
  const ListenerRuntime* listener_ = nullptr;
  std::vector<ActiveFilter> filters_;
  http::MessageHead* req_ = nullptr;
  http::MessageHead* resp_ = nullptr; // upstream head, or local_resp_
  http::MessageHead local_resp_;
  std::string_view path_; // normalized (or rewritten) :path
  std::string_view request_id_;
  std::string path_buf_;
  network::Buffer req_body_;
  network::Buffer resp_body_;
  std::vector<std::pair<std::string_view, std::string_view>> metadata_;

  // route
  upstream::ClusterPool* pool_ = nullptr;
  std::string_view route_name_;
  std::string_view response_details_; // sluice_host_send_local_reply's details (arena)
  std::string_view upstream_path_;
  uint32_t timeout_ms_ = 0;
  uint32_t retries_left_ = 0;
  uint32_t retry_on_ = 0;
  uint32_t per_try_timeout_ms_ = 0;
  int last_endpoint_ = -1;
  upstream::UpstreamConnection* up_ = nullptr;
  std::string_view endpoint_address_;
  event::TimerPtr timer_;
  event::TimerPtr try_timer_;

  // state
  bool active_ = false;
  bool routed_ = false;
  bool local_reply_ = false;
  bool req_headers_done_ = false; // request header hooks finished
  bool req_complete_ = false;     // downstream request fully received
  bool req_body_sent_ = false;    // some request body went upstream
  bool upstream_started_ = false;
  bool upstream_request_done_ = false;
  bool response_started_ = false; // head written downstream
  bool resp_headers_done_ = false;
  bool resp_complete_ = false;
  bool req_chunked_up_ = false;
  bool resp_chunked_down_ = false;
  bool resp_close_delimited_ = false;
  bool close_after_ = false;
  bool expect_continue_ = false;
  bool upgrade_ = false;
  Pause req_pause_ = Pause::None;
  size_t req_pause_at_ = 0;
  Pause resp_pause_ = Pause::None;
  size_t resp_pause_at_ = 0; // filter index (in chain order) that paused the response
  size_t resp_top_ = 0;      // response hooks run on filters [0, resp_top_)
  bool resp_headers_held_ = false;
  uint32_t flags_ = 0;
  uint32_t status_ = 0;
  uint64_t start_us_ = 0;
  uint64_t start_unix_us_ = 0;
  uint64_t upstream_start_us_ = 0;
  uint64_t upstream_head_us_ = 0;
  uint64_t end_us_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  size_t listener_index_ = 0;
  size_t cur_filter_ = SIZE_MAX;
  int in_hook_ = 0;
  bool pending_complete_ = false;
  size_t skip_body_filter_ = SIZE_MAX;      // got the whole request body already
  size_t resp_skip_body_filter_ = SIZE_MAX; // got the whole response body already
  bool is_head_ = false;
  static constexpr size_t kReplayLimit = 64 * 1024;
  network::Buffer replay_;
  bool replay_overflow_ = false;
  bool retry_held_ = false; // counted in the cluster's active_retries
  bool synthetic_ = false;  // bench mode: answered by WorkerContext::syntheticUpstream()
  bool pending_ = false;    // counted in the cluster's pending requests (connection connecting)
};

} // namespace sluice::filter
