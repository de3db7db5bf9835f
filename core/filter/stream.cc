#include "core/filter/stream.h"

#include "core/common/uuid.h"
#include "core/filter/http_call.h"
#include "core/filter/proxy_headers.h"
#include "core/filter/stream_stats.h"
#include "core/http/path.h"

#include <sys/time.h>

namespace sluice::filter {

namespace {

uint64_t unixMicros() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
}

constexpr sluice_direction_t kRequest = SLUICE_DIRECTION_REQUEST;

} // namespace

Stream::Stream(WorkerContext& worker, StreamOwner& owner)
    : worker_(worker), owner_(&owner), upstream_(worker, *this), local_resp_(arena_) {
  metadata_.reserve(8);
}

Stream::~Stream() {
  if (active_) {
    onDownstreamReset();
  }
}

void Stream::begin(const WorkerSnapshotPtr& snap, size_t listener_index, http::MessageHead& head,
                   uint64_t start_mono_ms) {
  arena_.reset();
  metadata_.clear();
  fm_.reset();
  upstream_.reset();
  req_body_.clear();
  resp_body_.clear();
  snap_ = snap;
  listener_index_ = listener_index;
  listener_ = &snap_->snapshot().listeners[listener_index];
  req_ = &head;
  resp_ = nullptr;
  synthetic_ = false;
  route_name_ = {};
  response_details_ = {};
  upstream_path_ = {};
  active_ = true;
  routed_ = local_reply_ = req_complete_ = response_started_ = resp_complete_ = false;
  resp_chunked_down_ = close_after_ = expect_continue_ = upgrade_ = pending_complete_ = false;
  flags_ = status_ = 0;
  start_us_ = stats::monotonicUs();
  (void)start_mono_ms;
  start_unix_us_ = unixMicros();
  end_us_ = 0;
  bytes_in_ = bytes_out_ = 0;
  is_head_ = head.method == "HEAD";

  const auto& lcfg = *listener_->config;
  if (!head.keep_alive || owner_->draining()) {
    close_after_ = true;
  }
  // Request id: trusted from the client, or generated.
  std::string_view incoming = head.headers.get(lcfg.request_id.header);
  if (lcfg.request_id.trust_incoming && !incoming.empty() && incoming.size() <= 200) {
    request_id_ = incoming;
  } else {
    request_id_ = generateRequestId();
    head.headers.set(lcfg.request_id.header, request_id_);
    request_id_ = head.headers.get(lcfg.request_id.header);
  }

  // Absolute-form (a client that talks to us as to a forward proxy) is routed by its origin-form
  // part, and only when its authority is the Host header.
  std::string_view target = head.target;
  if (http::originFormOf(head.target, head.headers.get("host"), &target) ==
      http::TargetForm::Invalid) {
    close_after_ = true;
    sendLocalReply(400, "bad request target\n", 0);
    return;
  }
  bool changed = false;
  http::PathStatus ps = http::normalizePath(target, path_buf_, &changed);
  if (ps != http::PathStatus::Ok) {
    close_after_ = true;
    sendLocalReply(400,
                   ps == http::PathStatus::EscapesRoot ? "path escapes the root\n"
                                                       : "bad request target\n",
                   0);
    return;
  }
  path_ = changed ? std::string_view(path_buf_) : target;
  expect_continue_ = !head.no_body && http::iequals(head.headers.get("expect"), "100-continue");
  upgrade_ = head.upgrade;
  // A request that asks for an upgrade and does not get a 101 ends its connection: the bytes
  // after its head belong to the protocol it asked for.
  close_after_ = close_after_ || upgrade_;
  req_complete_ = head.no_body;
  if (lcfg.limits.max_request_body_bytes > 0 && head.has_content_length &&
      head.content_length > lcfg.limits.max_request_body_bytes) {
    close_after_ = true;
    sendLocalReply(413, "request body too large\n", 0);
    return;
  }
  fm_.createFilters(*snap_, listener_index, handle());
  fm_.runHeaders(kRequest, fm_.first(kRequest));
}

std::string_view Stream::generateRequestId() {
  const uint64_t a = worker_.random();
  const uint64_t b = worker_.random();
  char buf[36];
  formatUuidV4(a, b, buf);
  return arena_.copy(std::string_view(buf, sizeof(buf)));
}

bool Stream::stoppedAfterHook() {
  if (!active_) {
    return true;
  }
  if (local_reply_) {
    if (pending_complete_) {
      pending_complete_ = false;
      complete(close_after_);
    }
    return true;
  }
  return false;
}

void Stream::failFilter() {
  close_after_ = true;
  if (!response_started_) {
    sendLocalReply(500, "filter error\n", SLUICE_FLAG_LOCAL_REPLY);
  } else {
    complete(true);
  }
}

// --- request ---

void Stream::requestHeadersDone() {
  if (!routed_) {
    flags_ |= SLUICE_FLAG_NO_ROUTE;
    sendLocalReply(404, "no route\n", 0);
    return;
  }
  startUpstream();
  if (!active_ || local_reply_) {
    return;
  }
  if (!req_->no_body && !upgrade_ && (req_body_.readable() > 0 || req_complete_)) {
    fm_.runBody(kRequest, fm_.first(kRequest), req_complete_);
  }
}

void Stream::onRequestData(std::string_view data) {
  if (!active_ || local_reply_) {
    return;
  }
  bytes_in_ += data.size();
  uint64_t limit = listener_->config->limits.max_request_body_bytes;
  if (limit > 0 && bytes_in_ > limit) {
    close_after_ = true;
    if (!response_started_) {
      sendLocalReply(413, "request body too large\n", 0);
    } else {
      complete(true);
    }
    return;
  }
  if (!fm_.headersDone(kRequest) || fm_.paused(kRequest) || !upstream_.attached()) {
    req_body_.append(data);
    if (req_body_.readable() > network::Connection::kHighWatermark) {
      owner_->readDisableDownstream(true);
    }
    return;
  }
  if (!listener_->any_request_body_hook) {
    if (upstream_.forwardBody(data)) {
      owner_->readDisableDownstream(true);
    }
    return;
  }
  req_body_.append(data);
  fm_.runBody(kRequest, fm_.first(kRequest), false);
}

void Stream::onRequestEnd() {
  if (!active_) {
    return;
  }
  bool was_complete = req_complete_;
  req_complete_ = true;
  if (local_reply_ || (was_complete && req_->no_body)) {
    return;
  }
  if (req_->trailers.size() > 0 && !fm_.runTrailers(kRequest)) {
    return;
  }
  if (!fm_.messageComplete(kRequest) || (!upstream_.attached() && !synthetic_)) {
    return;
  }
  fm_.runBody(kRequest, fm_.first(kRequest), true);
}

void Stream::forwardRequestBody(bool end) {
  if (!upstream_.attached()) {
    req_body_.clear();
    if (end && synthetic_ && !upstream_.requestDone()) {
      respondSynthetic();
    }
    return;
  }
  if (!req_body_.empty()) {
    upstream_.writeBody(req_body_.view());
    req_body_.clear();
  }
  if (end) {
    upstream_.finishRequest(req_->trailers);
  }
  owner_->readDisableDownstream(upstream_.flush());
}

void Stream::startUpstream() {
  upstream_.markStart();
  if (worker_.syntheticUpstream() != nullptr) {
    synthetic_ = true;
    if (req_complete_ && (req_->no_body || req_body_.empty())) {
      respondSynthetic();
    }
    return;
  }
  if (expect_continue_) {
    owner_->downstreamOut().append("HTTP/1.1 100 Continue\r\n\r\n");
    owner_->flushDownstream();
  }
  upstream_.start();
}

bool Stream::writeUpstreamHead(network::Buffer& out) {
  const http::MessageHead& req = *req_;
  out.append(req.method);
  out.append(' ');
  out.append(upstream_path_.empty() ? path_ : upstream_path_);
  out.append(" HTTP/1.1\r\n");
  ProxyHead ph;
  ph.add_forwarded = true;
  ph.client_ip = owner_->peerIp();
  ph.forwarded_proto = listener_->config->tls ? "https" : "http";
  ph.drop_expect = expect_continue_;
  if (upgrade_) {
    ph.framing = BodyFraming::Upgrade;
    ph.upgrade = req.headers.get("upgrade");
  } else if (req.no_body) {
    ph.framing = req.has_content_length ? BodyFraming::ContentLength : BodyFraming::None;
  } else if (req.has_content_length && !listener_->any_request_body_hook) {
    ph.framing = BodyFraming::ContentLength;
    ph.content_length = req.content_length;
  } else {
    ph.framing = BodyFraming::Chunked;
  }
  writeProxyHeaders(out, req.headers, ph);
  return ph.framing == BodyFraming::Chunked;
}

void Stream::onTunnelData(std::string_view data) {
  bytes_out_ += data.size();
  owner_->onTunnelData(data);
}

// --- downstream events and the end of the stream ---

void Stream::onDownstreamDrained() {
  upstream_.readEnable(true);
}

void Stream::onDownstreamReset() {
  if (!active_) {
    return;
  }
  if (!resp_complete_) {
    flags_ |= SLUICE_FLAG_DOWNSTREAM_DISCONNECT;
  }
  close_after_ = true;
  complete(true);
}

void Stream::complete(bool close_connection) {
  if (!active_) {
    return;
  }
  active_ = false;
  end_us_ = stats::monotonicUs();
  upstream_.finish(resp_complete_);
  fm_.notifyComplete(handle());
  stats::recordStream(worker_, listener_index_, *listener_, status_, end_us_ - start_us_,
                      upstream_.pool(), upstream_.headUs() > 0);
  fm_.destroyFilters();
  worker_.cancelStreamTimers(this);
  if (http_calls_ != nullptr) {
    HttpCalls::cancelForStream(worker_, this);
  }
  snap_.reset();
  owner_->flushDownstream();
  owner_->onStreamDone(close_connection || close_after_);
}

} // namespace sluice::filter
