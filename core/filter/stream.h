#pragma once

// One HTTP exchange on a downstream connection: runs the listener's filter chain through the C
// ABI (request hooks in order, response hooks in reverse), sends the request to the routed
// cluster and streams the response back. Stream objects are reused (a worker's pool hands one to
// a connection for each request, core/server/http_connection.h), so steady state does not
// allocate.
//
// The Stream owns the exchange's state: its lifecycle and request path (stream.cc), its response
// path to the client (stream_response.cc); its parts are the
// FilterManager (hook iteration, filter_manager.cc), the UpstreamRequest (endpoint choice,
// retries, timeouts, upstream_request.cc), the HTTP/1 proxy header serializer both directions
// write with (proxy_headers.cc), and the view the C ABI has of it (stream_view.cc).

#include "core/filter/filter_manager.h"
#include "core/filter/upstream_request.h"
#include "core/filter/worker_context.h"
#include "core/http/codec.h"
#include "core/network/buffer.h"
#include "sluice/filter.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filter {

// What a stream needs from its downstream connection.
struct HttpCallLink;

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

class Stream {
public:
  Stream(WorkerContext& worker, StreamOwner& owner);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // A pooled stream serves one connection after another: the next one's owner, set while the
  // stream is not active.
  void setOwner(StreamOwner& owner) { owner_ = &owner; }

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

  // --- used by the ABI bridge (stream_view.cc) ---
  http::HeaderMap* headerMap(sluice_header_map_t map);
  bool getHeader(sluice_header_map_t map, std::string_view name, size_t index,
                 std::string_view* out);
  // False (and nothing changed) when the name or value could forge or split a line on the wire,
  // or names a pseudo-header this map does not have.
  bool setHeader(sluice_header_map_t map, std::string_view name, std::string_view value,
                 bool append);
  size_t removeHeader(sluice_header_map_t map, std::string_view name);
  network::Buffer& bodyBuffer(sluice_direction_t dir) {
    return dir == SLUICE_DIRECTION_REQUEST ? req_body_ : resp_body_;
  }
  bool route(const sluice_route_t* r);
  void resume(sluice_direction_t dir) { fm_.resume(dir); }
  void addFlags(uint32_t f) { flags_ |= f; }
  uint32_t flags() const { return flags_; }
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

  // Index of the filter whose hook is running (for local replies), or SIZE_MAX.
  size_t currentFilter() const { return fm_.currentFilter(); }

  // Head of this stream's pending ABI timers and posted tasks (an intrusive list the worker
  // context maintains), so ending the stream cancels them in O(own timers), allocation-free.
  AbiTimer*& abiTimers() { return abi_timers_; }
  // Head of this stream's pending HTTP calls (HttpCalls links and unlinks them).
  HttpCallLink*& httpCalls() { return http_calls_; }

private:
  friend class FilterManager;
  friend class UpstreamRequest;

  // --- for the FilterManager: what follows its iterations ---
  // After every hook: true (stop iterating) if the stream ended or answered locally.
  bool afterHook() { return (active_ && !local_reply_) ? false : stoppedAfterHook(); }
  bool stoppedAfterHook();
  // A hook returned an invalid status: 500, or the end of a response already under way.
  void failFilter();
  bool headersEndStream(sluice_direction_t dir) const {
    return dir == SLUICE_DIRECTION_REQUEST ? req_->no_body : resp_->no_body;
  }
  bool anyBodyHook(sluice_direction_t dir) const {
    return dir == SLUICE_DIRECTION_REQUEST ? listener_->any_request_body_hook
                                           : listener_->any_response_body_hook;
  }
  bool messageEnded(sluice_direction_t dir) const {
    return dir == SLUICE_DIRECTION_REQUEST ? req_complete_ : resp_complete_;
  }
  void headersDone(sluice_direction_t dir) {
    dir == SLUICE_DIRECTION_REQUEST ? requestHeadersDone() : responseHeadersDone();
  }
  void bodyDone(sluice_direction_t dir, bool end) {
    dir == SLUICE_DIRECTION_REQUEST ? forwardRequestBody(end) : sendBufferedResponse(end);
  }

  // --- for the UpstreamRequest ---
  const http::MessageHead& request() const { return *req_; }
  StreamOwner& owner() { return *owner_; }
  bool isHead() const { return is_head_; }
  bool upgrading() const { return upgrade_; }
  // The downstream request ended and all of it was handed on (nothing held by a filter).
  bool requestForwarded() const {
    return req_complete_ && !fm_.paused(SLUICE_DIRECTION_REQUEST) && req_body_.empty();
  }
  // Writes the request head for the upstream; true if the body goes chunked.
  bool writeUpstreamHead(network::Buffer& out);
  // The response head came (after the UpstreamRequest's retry decision).
  void onUpstreamHead(http::MessageHead& head);
  void onResponseData(std::string_view data);
  void onResponseComplete();
  void onTunnelData(std::string_view data);
  // The response cannot be finished: end the stream and close the connection.
  void endAbruptly() {
    close_after_ = true;
    complete(true);
  }

  void requestHeadersDone();
  void forwardRequestBody(bool end);
  void startUpstream();
  void respondSynthetic();
  void responseHeadersDone();
  void sendBufferedResponse(bool end);
  void sendResponseHead();
  void sendResponseBody(std::string_view data, bool end);
  void finishResponse();
  void complete(bool close_connection);
  std::string_view generateRequestId();

  WorkerContext& worker_;
  StreamOwner* owner_;
  AbiTimer* abi_timers_ = nullptr;
  HttpCallLink* http_calls_ = nullptr;
  http::Arena arena_;
  WorkerSnapshotPtr snap_;
  const ListenerRuntime* listener_ = nullptr;
  FilterManager fm_{*this};
  UpstreamRequest upstream_;
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
  bool routed_ = false;
  std::string_view route_name_;
  std::string_view response_details_; // sluice_host_send_local_reply's details (arena)
  std::string_view upstream_path_;

  // state
  bool active_ = false;
  bool local_reply_ = false;
  bool req_complete_ = false; // downstream request fully received
  bool response_started_ = false; // head written downstream
  bool resp_complete_ = false;
  bool resp_chunked_down_ = false;
  bool close_after_ = false;
  bool expect_continue_ = false;
  bool upgrade_ = false;
  bool pending_complete_ = false;
  bool is_head_ = false;
  bool synthetic_ = false; // bench mode: answered by WorkerContext::syntheticUpstream()
  uint32_t flags_ = 0;
  uint32_t status_ = 0;
  uint64_t start_us_ = 0;
  uint64_t start_unix_us_ = 0;
  uint64_t end_us_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  size_t listener_index_ = 0;
};

} // namespace sluice::filter
