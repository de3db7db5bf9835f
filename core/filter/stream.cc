#include "core/filter/stream.h"

#include "core/common/logger.h"
#include "core/filter/http_call.h"
#include "core/filter/stream_stats.h"
#include "core/http/path.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <sys/time.h>
#include <uv.h>

namespace sluice::filter {

namespace {

constexpr std::string_view kVia = "1.1 sluice";

// Hop-by-hop headers (RFC 9110 §7.6.1) plus the framing headers sluice writes itself.
bool isHopByHop(std::string_view name) {
  switch (name.size()) {
  case 2:
    return http::iequals(name, "te");
  case 7:
    return http::iequals(name, "trailer") || http::iequals(name, "upgrade");
  case 10:
    return http::iequals(name, "connection") || http::iequals(name, "keep-alive");
  case 14:
    return http::iequals(name, "content-length");
  case 16:
    return http::iequals(name, "proxy-connection");
  case 17:
    return http::iequals(name, "transfer-encoding");
  default:
    return false;
  }
}

bool namedInConnection(std::string_view connection, std::string_view name) {
  return !connection.empty() && http::headerListContains(connection, name);
}

uint64_t monoUs() {
  return uv_hrtime() / 1000;
}

uint64_t unixMicros() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
}

} // namespace

Stream::Stream(WorkerContext& worker, StreamOwner& owner)
    : worker_(worker), owner_(owner), local_resp_(arena_) {
  filters_.reserve(8);
  metadata_.reserve(8);
  timer_ = worker_.dispatcher().createTimer([this] { upstreamTimeout(); });
  try_timer_ = worker_.dispatcher().createTimer([this] {
    if (active_ && up_ != nullptr && !response_started_) {
      flags_ |= SLUICE_FLAG_UPSTREAM_TIMEOUT;
      onUpstreamFailure(upstream::Failure::ConnectTimeout, false);
    }
  });
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
  filters_.clear();
  req_body_.clear();
  resp_body_.clear();
  snap_ = snap;
  listener_index_ = listener_index;
  listener_ = &snap_->snapshot().listeners[listener_index];
  req_ = &head;
  resp_ = nullptr;
  pool_ = nullptr;
  pending_ = false;
  synthetic_ = false;
  replay_.clear();
  replay_overflow_ = false;
  route_name_ = {};
  response_details_ = {};
  upstream_path_ = {};
  timeout_ms_ = retries_left_ = retry_on_ = per_try_timeout_ms_ = 0;
  last_endpoint_ = -1;
  up_ = nullptr;
  endpoint_address_ = {};
  active_ = true;
  routed_ = local_reply_ = req_headers_done_ = req_complete_ = req_body_sent_ = false;
  upstream_started_ = upstream_request_done_ = response_started_ = resp_headers_done_ = false;
  resp_complete_ = req_chunked_up_ = resp_chunked_down_ = resp_close_delimited_ = false;
  close_after_ = expect_continue_ = upgrade_ = resp_headers_held_ = pending_complete_ = false;
  req_pause_ = resp_pause_ = Pause::None;
  req_pause_at_ = resp_pause_at_ = 0;
  flags_ = status_ = 0;
  start_us_ = monoUs();
  (void)start_mono_ms;
  start_unix_us_ = unixMicros();
  upstream_start_us_ = upstream_head_us_ = end_us_ = 0;
  bytes_in_ = bytes_out_ = 0;
  cur_filter_ = SIZE_MAX;
  in_hook_ = 0;
  skip_body_filter_ = SIZE_MAX;
  resp_skip_body_filter_ = SIZE_MAX;
  is_head_ = head.method == "HEAD";

  const auto& lcfg = *listener_->config;
  if (!head.keep_alive || owner_.draining()) {
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

  const auto& fl = listener_->filters;
  for (size_t i = 0; i < fl.size(); i++) {
    const FilterInstance* f = fl[i].get();
    void* state = snap_->state(listener_index, i);
    void* obj = nullptr;
    {
      RunningFilterScope scope(f);
      obj = f->desc->sluice_on_stream_new(f->config, state, handle());
    }
    filters_.push_back(ActiveFilter{f, state, obj});
  }
  resp_top_ = filters_.size();
  runRequestHeaders(0);
}

std::string_view Stream::generateRequestId() {
  // A random UUID v4 string from two PRNG words, without per-character branching.
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t a = worker_.random();
  uint64_t b = worker_.random();
  a = (a & ~0xF000ull) | 0x4000ull;                        // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull; // RFC 4122 variant
  char buf[36];
  int j = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 8 || i == 12) {
      buf[j++] = '-';
    }
    buf[j++] = kHex[(a >> (60 - 4 * i)) & 0xF];
  }
  for (int i = 0; i < 16; i++) {
    if (i == 0 || i == 4) {
      buf[j++] = '-';
    }
    buf[j++] = kHex[(b >> (60 - 4 * i)) & 0xF];
  }
  return arena_.copy(std::string_view(buf, 36));
}

namespace {
thread_local const FilterInstance* t_running_filter = nullptr;
} // namespace

const FilterInstance* runningFilter() {
  return t_running_filter;
}

RunningFilterScope::RunningFilterScope(const FilterInstance* f) : outer_(t_running_filter) {
  t_running_filter = f;
}

RunningFilterScope::~RunningFilterScope() {
  t_running_filter = outer_;
}

sluice_status_t Stream::runHook(size_t i, HookFn hook, bool end_stream, bool check_status) {
  return guardHook(
      i, [&](ActiveFilter& f) { return hook(f.object, handle(), end_stream); }, check_status);
}

template <typename Call>
sluice_status_t Stream::guardHook(size_t i, Call&& call, bool check_status) {
  ActiveFilter& f = filters_[i];
  cur_filter_ = i;
  in_hook_++;
  const FilterInstance* outer = t_running_filter;
  t_running_filter = f.instance;
  sluice_status_t st = call(f);
  t_running_filter = outer;
  in_hook_--;
  cur_filter_ = SIZE_MAX;
  if (check_status && static_cast<uint32_t>(st) > SLUICE_STATUS_STOP_AND_BUFFER && active_ &&
      !local_reply_) {
    // Not a sluice_status_t: the filter is broken. End the stream rather than guess.
    SLUICE_LOG(Error, "filter", "filter \"{}\" ({}) returned an invalid status {}; answering 500",
               f.instance->name, f.instance->type, static_cast<uint32_t>(st));
    stats::recordFilterError(*f.instance);
    if (!response_started_) {
      close_after_ = true;
      sendLocalReply(500, "filter error\n", SLUICE_FLAG_LOCAL_REPLY);
    } else {
      close_after_ = true;
      complete(true);
    }
    return SLUICE_STATUS_CONTINUE;
  }
  return st;
}

bool Stream::runTrailerHooks(sluice_direction_t dir) {
  bool request = dir == SLUICE_DIRECTION_REQUEST;
  size_t n = request ? filters_.size() : resp_top_;
  for (size_t k = 0; k < n; k++) {
    size_t i = request ? k : n - 1 - k; // request in chain order, response in reverse
    const sluice_filter_descriptor_t* d = filters_[i].instance->desc;
    auto hook = request ? d->sluice_on_request_trailers : d->sluice_on_response_trailers;
    if (filters_[i].object == nullptr || hook == nullptr) {
      continue;
    }
    // Trailers end the message: a trailers hook cannot pause it (STOP counts as CONTINUE).
    guardHook(
        i, [&](ActiveFilter& f) { return hook(f.object, handle()); }, true);
    if (afterHook()) {
      return false;
    }
  }
  return true;
}

// After every hook: stop iterating if the stream ended or answered locally.
bool Stream::afterHook() {
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

void Stream::runRequestHeaders(size_t from) {
  for (size_t i = from; i < filters_.size(); i++) {
    ActiveFilter& f = filters_[i];
    auto hook = f.instance->desc->sluice_on_request_headers;
    if (f.object == nullptr || hook == nullptr) {
      continue;
    }
    sluice_status_t st = runHook(i, hook, req_->no_body, true);
    if (afterHook()) {
      return;
    }
    if (st == SLUICE_STATUS_STOP_AND_BUFFER && req_->no_body) {
      continue; // nothing to buffer
    }
    if (st != SLUICE_STATUS_CONTINUE) {
      req_pause_ = st == SLUICE_STATUS_STOP_AND_BUFFER ? Pause::Buffer : Pause::Stop;
      req_pause_at_ = i;
      if (req_pause_ == Pause::Buffer) {
        skip_body_filter_ = i;
      }
      return;
    }
  }
  requestHeadersDone();
}

void Stream::requestHeadersDone() {
  req_headers_done_ = true;
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
    runRequestBody(0, req_complete_);
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
  if (!req_headers_done_ || req_pause_ != Pause::None || up_ == nullptr) {
    req_body_.append(data);
    if (req_body_.readable() > network::Connection::kHighWatermark) {
      owner_.readDisableDownstream(true);
    }
    return;
  }
  if (!listener_->any_request_body_hook) {
    req_body_sent_ = true;
    keepForReplay(data);
    network::Buffer& out = up_->out();
    if (req_chunked_up_) {
      http::appendChunk(out, data);
    } else {
      out.append(data);
    }
    up_->flush();
    if (up_ != nullptr && up_->aboveHighWatermark()) {
      owner_.readDisableDownstream(true);
    }
    return;
  }
  req_body_.append(data);
  runRequestBody(0, false);
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
  if (req_->trailers.size() > 0 && !runTrailerHooks(SLUICE_DIRECTION_REQUEST)) {
    return;
  }
  if (!req_headers_done_) {
    if (req_pause_ == Pause::Buffer) {
      // The filter that asked for the whole body gets it now.
      size_t at = req_pause_at_;
      ActiveFilter& f = filters_[at];
      auto hook = f.instance->desc->sluice_on_request_body;
      sluice_status_t st = SLUICE_STATUS_CONTINUE;
      if (hook != nullptr) {
        st = runHook(at, hook, true, true);
        if (afterHook()) {
          return;
        }
      }
      if (st == SLUICE_STATUS_STOP) {
        req_pause_ = Pause::Stop;
        return;
      }
      req_pause_ = Pause::None;
      runRequestHeaders(at + 1);
    }
    return;
  }
  if (req_pause_ == Pause::Buffer) {
    size_t at = req_pause_at_;
    req_pause_ = Pause::None;
    runRequestBody(at, true);
    return;
  }
  if (req_pause_ == Pause::Stop || (up_ == nullptr && !synthetic_)) {
    return;
  }
  runRequestBody(0, true);
}

void Stream::runRequestBody(size_t from, bool end) {
  if (listener_->any_request_body_hook) {
    for (size_t i = from; i < filters_.size(); i++) {
      ActiveFilter& f = filters_[i];
      auto hook = f.instance->desc->sluice_on_request_body;
      if (f.object == nullptr || hook == nullptr || i == skip_body_filter_) {
        continue;
      }
      sluice_status_t st = runHook(i, hook, end, true);
      if (afterHook()) {
        return;
      }
      if (st == SLUICE_STATUS_STOP || (st == SLUICE_STATUS_STOP_AND_BUFFER && !end)) {
        req_pause_ = st == SLUICE_STATUS_STOP ? Pause::Stop : Pause::Buffer;
        req_pause_at_ = i;
        return;
      }
    }
  }
  forwardRequestBody(end);
}

void Stream::forwardRequestBody(bool end) {
  if (up_ == nullptr) {
    req_body_.clear();
    if (end && synthetic_ && !upstream_request_done_) {
      respondSynthetic();
    }
    return;
  }
  network::Buffer& out = up_->out();
  if (!req_body_.empty()) {
    req_body_sent_ = true;
    keepForReplay(req_body_.view());
    if (req_chunked_up_) {
      http::appendChunk(out, req_body_.view());
    } else {
      out.append(req_body_.view());
    }
    req_body_.clear();
  }
  if (end && !upstream_request_done_) {
    if (req_chunked_up_) {
      http::appendLastChunk(out, &req_->trailers);
    }
    upstream_request_done_ = true;
  }
  up_->flush();
  if (up_ != nullptr && upstream_request_done_) {
    up_->requestComplete();
  }
  if (up_ != nullptr && up_->aboveHighWatermark()) {
    owner_.readDisableDownstream(true);
  } else {
    owner_.readDisableDownstream(false);
  }
}

void Stream::startUpstream() {
  upstream_started_ = true;
  upstream_start_us_ = monoUs();
  if (worker_.syntheticUpstream() != nullptr) {
    synthetic_ = true;
    if (req_complete_ && (req_->no_body || req_body_.empty())) {
      respondSynthetic();
    }
    return;
  }
  if (timeout_ms_ > 0) {
    timer_->enable(timeout_ms_);
  }
  if (expect_continue_) {
    owner_.downstreamOut().append("HTTP/1.1 100 Continue\r\n\r\n");
    owner_.flushDownstream();
  }
  tryUpstream();
}

void Stream::respondSynthetic() {
  const SyntheticUpstream& s = *worker_.syntheticUpstream();
  upstream_request_done_ = true;
  local_resp_.reset();
  local_resp_.status = s.status;
  local_resp_.headers.addView("content-type", "text/plain");
  char len[24];
  int n = snprintf(len, sizeof(len), "%zu", s.body.size());
  local_resp_.headers.add("content-length", std::string_view(len, static_cast<size_t>(n)));
  local_resp_.has_content_length = true;
  local_resp_.content_length = s.body.size();
  local_resp_.no_body = s.body.empty() || is_head_;
  onResponseHead(local_resp_);
  if (active_ && !local_resp_.no_body) {
    onResponseData(s.body);
  }
  if (active_) {
    onResponseComplete();
  }
}

bool Stream::tryUpstream() {
  upstream::ClusterInfo& info = pool_->info();
  const config::ClusterConfig& cc = info.config();
  uint64_t hash = 0;
  bool has_hash = false;
  if (cc.hash_on) {
    std::string_view key = cc.hash_on->client_ip ? std::string_view(owner_.peerIp())
                                                 : req_->headers.get(cc.hash_on->header);
    if (!key.empty()) {
      hash = upstream::hashKey(key);
      has_hash = true;
    }
  }
  int ep = pool_->pickEndpoint(last_endpoint_, hash, has_hash);
  if (ep < 0) {
    failUpstream(503, SLUICE_FLAG_NO_HEALTHY_UPSTREAM, "no healthy upstream\n");
    return false;
  }
  // Circuit breakers: requests in flight and requests waiting for a connection, per cluster
  // across all workers.
  if (info.active_requests.load(std::memory_order_relaxed) >=
          static_cast<int64_t>(cc.circuit_breaker.max_requests) ||
      info.pending_requests.load(std::memory_order_relaxed) >=
          static_cast<int64_t>(cc.circuit_breaker.max_pending)) {
    stats::recordUpstreamError(worker_, pool_, "overflow");
    failUpstream(503, SLUICE_FLAG_UPSTREAM_OVERFLOW, "upstream overflow\n");
    return false;
  }
  upstream::UpstreamConnection* c = pool_->acquire(static_cast<size_t>(ep));
  if (c == nullptr) {
    stats::recordUpstreamError(worker_, pool_, "overflow");
    failUpstream(503, SLUICE_FLAG_UPSTREAM_OVERFLOW, "upstream connection limit reached\n");
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
  c->attach(this, is_head_);
  writeUpstreamHead();
  if (per_try_timeout_ms_ > 0) {
    try_timer_->enable(per_try_timeout_ms_);
  }
  if (up_ != nullptr && (req_->no_body || upgrade_)) {
    upstream_request_done_ = true;
    up_->flush();
    up_->requestComplete();
  } else if (up_ != nullptr) {
    network::Buffer& out = up_->out();
    if (!replay_.empty()) {
      // A retry: resend the body the previous try got.
      if (req_chunked_up_) {
        http::appendChunk(out, replay_.view());
      } else {
        out.append(replay_.view());
      }
    }
    if (retry_held_ && req_complete_ && req_pause_ == Pause::None && req_body_.empty() &&
        !upstream_request_done_) {
      if (req_chunked_up_) {
        http::appendLastChunk(out, &req_->trailers);
      }
      upstream_request_done_ = true;
      up_->flush();
      if (up_ != nullptr) {
        up_->requestComplete();
      }
    } else {
      up_->flush();
    }
  }
  return true;
}

void Stream::keepForReplay(std::string_view data) {
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

bool Stream::takeRetryBudget() {
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

void Stream::releaseRetryBudget() {
  if (retry_held_) {
    retry_held_ = false;
    pool_->info().active_retries.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Stream::writeUpstreamHead() {
  network::Buffer& out = up_->out();
  const http::HeaderMap& h = req_->headers;
  std::string_view path = upstream_path_.empty() ? path_ : upstream_path_;
  out.append(req_->method);
  out.append(' ');
  out.append(path);
  out.append(" HTTP/1.1\r\n");
  std::string_view connection = h.get("connection");
  bool conn_named = !connection.empty() && !http::iequals(connection, "keep-alive") &&
                    !http::iequals(connection, "close");
  std::string_view xff;
  std::string_view via;
  for (const auto& e : h.entries()) {
    if (isHopByHop(e.name) || (conn_named && namedInConnection(connection, e.name))) {
      continue;
    }
    if (e.name.size() == 15 && http::iequals(e.name, "x-forwarded-for")) {
      xff = e.value;
      continue;
    }
    if (e.name.size() == 17 && http::iequals(e.name, "x-forwarded-proto")) {
      continue;
    }
    if (e.name.size() == 3 && http::iequals(e.name, "via")) {
      via = e.value;
      continue;
    }
    if (expect_continue_ && e.name.size() == 6 && http::iequals(e.name, "expect")) {
      continue;
    }
    http::appendHeader(out, e.name, e.value);
  }
  const std::string& ip = owner_.peerIp();
  if (xff.empty()) {
    http::appendHeader(out, "x-forwarded-for", ip);
  } else {
    out.append("x-forwarded-for: ");
    out.append(xff);
    out.append(", ");
    out.append(ip);
    out.append("\r\n");
  }
  http::appendHeader(out, "x-forwarded-proto", listener_->config->tls ? "https" : "http");
  if (via.empty()) {
    http::appendHeader(out, "via", kVia);
  } else {
    out.append("via: ");
    out.append(via);
    out.append(", ");
    out.append(kVia);
    out.append("\r\n");
  }
  if (upgrade_) {
    http::appendHeader(out, "connection", "upgrade");
    http::appendHeader(out, "upgrade", h.get("upgrade"));
  } else if (req_->no_body) {
    if (req_->has_content_length) {
      out.append("content-length: 0\r\n");
    }
  } else if (req_->has_content_length && !listener_->any_request_body_hook) {
    out.append("content-length: ");
    http::appendDecimal(out, req_->content_length);
    out.append("\r\n");
  } else {
    req_chunked_up_ = true;
    out.append("transfer-encoding: chunked\r\n");
  }
  out.append("\r\n");
}

void Stream::upstreamTimeout() {
  if (!active_) {
    return;
  }
  flags_ |= SLUICE_FLAG_UPSTREAM_TIMEOUT;
  stats::recordUpstreamError(worker_, pool_, "timeout");
  if (response_started_) {
    close_after_ = true;
    complete(true);
    return;
  }
  releaseUpstream(true);
  sendLocalReply(504, "upstream request timeout\n", 0);
}

void Stream::releaseUpstream(bool abort) {
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

void Stream::failUpstream(uint32_t status, uint32_t flag, std::string_view body) {
  flags_ |= flag;
  releaseUpstream(true);
  sendLocalReply(status, body, 0);
}

void Stream::onUpstreamFailure(upstream::Failure f, bool response_started) {
  if (!active_) {
    return;
  }
  if (up_ != nullptr) {
    up_->endpoint().active_requests.fetch_sub(1, std::memory_order_relaxed);
    pool_->info().active_requests.fetch_sub(1, std::memory_order_relaxed);
    clearPending();
    up_ = nullptr; // the connection is already closed
  }
  try_timer_->disable();
  uint32_t cause = 0;
  const char* kind = "reset";
  switch (f) {
  case upstream::Failure::ConnectFailure:
    cause = SLUICE_RETRY_CONNECT_FAILURE;
    kind = "connect_failure";
    break;
  case upstream::Failure::ConnectTimeout:
    cause = (flags_ & SLUICE_FLAG_UPSTREAM_TIMEOUT) ? SLUICE_RETRY_TIMEOUT
                                                    : SLUICE_RETRY_CONNECT_FAILURE;
    kind = (flags_ & SLUICE_FLAG_UPSTREAM_TIMEOUT) ? "timeout" : "connect_failure";
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
  if (response_started || response_started_) {
    flags_ |= SLUICE_FLAG_UPSTREAM_RESET;
    close_after_ = true;
    complete(true);
    return;
  }
  if (retries_left_ > 0 && (retry_on_ & cause) && canResend() && takeRetryBudget()) {
    retries_left_--;
    upstream_request_done_ = false;
    req_chunked_up_ = false;
    tryUpstream();
    return;
  }
  if (cause == SLUICE_RETRY_TIMEOUT) {
    sendLocalReply(504, "upstream request timeout\n", 0);
  } else if (cause == SLUICE_RETRY_CONNECT_FAILURE) {
    flags_ |= SLUICE_FLAG_UPSTREAM_CONNECT_FAILURE;
    sendLocalReply(502, "upstream connect error\n", 0);
  } else {
    flags_ |= SLUICE_FLAG_UPSTREAM_RESET;
    sendLocalReply(502, "upstream reset before response\n", 0);
  }
}

void Stream::onResponseHead(http::MessageHead& head) {
  if (!active_) {
    return;
  }
  try_timer_->disable();
  upstream_head_us_ = monoUs();
  stats::recordUpstreamDuration(pool_, upstream_head_us_ - upstream_start_us_);
  if (last_endpoint_ >= 0) {
    pool_->info().recordOutcome(static_cast<size_t>(last_endpoint_), head.status >= 500);
  }
  if (head.status >= 500 && (retry_on_ & SLUICE_RETRY_5XX) && retries_left_ > 0 && canResend() &&
      upstream_request_done_ && takeRetryBudget()) {
    retries_left_--;
    releaseUpstream(true);
    upstream_request_done_ = false;
    tryUpstream();
    return;
  }
  resp_ = &head;
  status_ = head.status;
  if (head.status == 101) {
    if (!upgrade_) {
      onUpstreamFailure(upstream::Failure::BadResponse, false);
      return;
    }
    timer_->disable();
    sendResponseHead();
    owner_.flushDownstream();
    upstream::UpstreamConnection* c = up_;
    owner_.onTunnelStart(c);
    c->startTunnel();
    return;
  }
  runResponseHeaders(resp_top_);
}

void Stream::runResponseHeaders(size_t top) {
  for (size_t i = top; i-- > 0;) {
    ActiveFilter& f = filters_[i];
    auto hook = f.instance->desc->sluice_on_response_headers;
    if (f.object == nullptr || hook == nullptr) {
      continue;
    }
    sluice_status_t st = runHook(i, hook, resp_->no_body, true);
    if (afterHook()) {
      return;
    }
    if (st != SLUICE_STATUS_CONTINUE) {
      resp_pause_ = st == SLUICE_STATUS_STOP ? Pause::Stop : Pause::Buffer;
      resp_pause_at_ = i;
      resp_headers_held_ = true;
      return;
    }
  }
  resp_headers_done_ = true;
  if (!resp_headers_held_ && !listener_->any_response_body_hook) {
    sendResponseHead();
  } else if (!listener_->any_response_body_hook || resp_complete_) {
    if (resp_complete_) {
      runResponseBody(resp_top_, true);
      return;
    }
    sendResponseHead();
  }
}

void Stream::onResponseData(std::string_view data) {
  if (!active_) {
    return;
  }
  if (!resp_headers_done_ || resp_pause_ != Pause::None || listener_->any_response_body_hook) {
    resp_body_.append(data);
    if (resp_headers_done_ && resp_pause_ == Pause::None) {
      runResponseBody(resp_top_, false);
    }
  } else {
    sendResponseBody(data, false);
  }
  if (up_ != nullptr && (owner_.downstreamAboveHighWatermark() ||
                         resp_body_.readable() > network::Connection::kHighWatermark)) {
    up_->readEnable(false);
  }
}

void Stream::runResponseBody(size_t top, bool end) {
  for (size_t i = top; i-- > 0;) {
    ActiveFilter& f = filters_[i];
    auto hook = f.instance->desc->sluice_on_response_body;
    if (f.object == nullptr || hook == nullptr || i == resp_skip_body_filter_) {
      continue;
    }
    sluice_status_t st = runHook(i, hook, end, true);
    if (afterHook()) {
      return;
    }
    if (st == SLUICE_STATUS_STOP || (st == SLUICE_STATUS_STOP_AND_BUFFER && !end)) {
      resp_pause_ = st == SLUICE_STATUS_STOP ? Pause::Stop : Pause::Buffer;
      resp_pause_at_ = i;
      if (st == SLUICE_STATUS_STOP_AND_BUFFER) {
        resp_headers_held_ = resp_headers_held_ || !response_started_;
      }
      return;
    }
  }
  if (!response_started_) {
    sendResponseHead();
  }
  if (!resp_body_.empty() || end) {
    std::string_view v = resp_body_.view();
    sendResponseBody(v, end);
    resp_body_.clear();
  }
  if (end) {
    finishResponse();
  }
}

void Stream::onResponseComplete() {
  if (!active_) {
    return;
  }
  resp_complete_ = true;
  if (resp_ != nullptr && resp_->trailers.size() > 0 &&
      !runTrailerHooks(SLUICE_DIRECTION_RESPONSE)) {
    return;
  }
  if (resp_pause_ == Pause::Buffer) {
    size_t at = resp_pause_at_;
    resp_pause_ = Pause::None;
    if (!resp_headers_done_) {
      // Headers hook asked for the whole body: give it, then the remaining header hooks.
      ActiveFilter& f = filters_[at];
      auto hook = f.instance->desc->sluice_on_response_body;
      if (hook != nullptr) {
        runHook(at, hook, true, false);
        if (afterHook()) {
          return;
        }
      }
      resp_skip_body_filter_ = at;
      runResponseHeaders(at);
      return;
    }
    runResponseBody(at + 1, true);
    return;
  }
  if (resp_pause_ == Pause::Stop || !resp_headers_done_) {
    return; // resume() finishes
  }
  if (listener_->any_response_body_hook) {
    runResponseBody(resp_top_, true);
    return;
  }
  sendResponseBody({}, true);
  finishResponse();
}

void Stream::sendResponseHead() {
  if (response_started_) {
    return;
  }
  response_started_ = true;
  network::Buffer& out = owner_.downstreamOut();
  const http::HeaderMap& h = resp_->headers;
  http::appendStatusLine(out, status_);
  std::string_view connection = h.get("connection");
  bool conn_named = !connection.empty() && !http::iequals(connection, "keep-alive") &&
                    !http::iequals(connection, "close");
  std::string_view via;
  bool has_rid = false;
  const std::string& rid_header = listener_->config->request_id.header;
  for (const auto& e : h.entries()) {
    if (isHopByHop(e.name) || (conn_named && namedInConnection(connection, e.name))) {
      continue;
    }
    if (e.name.size() == 3 && http::iequals(e.name, "via")) {
      via = e.value;
      continue;
    }
    if (e.name.size() == rid_header.size() && http::iequals(e.name, rid_header)) {
      has_rid = true;
    }
    http::appendHeader(out, e.name, e.value);
  }
  if (!has_rid && !request_id_.empty()) {
    http::appendHeader(out, rid_header, request_id_);
  }
  if (via.empty()) {
    http::appendHeader(out, "via", kVia);
  } else {
    out.append("via: ");
    out.append(via);
    out.append(", ");
    out.append(kVia);
    out.append("\r\n");
  }
  if (owner_.draining()) {
    close_after_ = true;
  }
  if (status_ == 101) {
    http::appendHeader(out, "connection", "upgrade");
    http::appendHeader(out, "upgrade", h.get("upgrade"));
    out.append("\r\n");
    return;
  }
  if (resp_->no_body || status_ == 204 || status_ == 304) {
    if (is_head_ && resp_->has_content_length) {
      out.append("content-length: ");
      http::appendDecimal(out, resp_->content_length);
      out.append("\r\n");
    }
  } else if (resp_complete_ && (resp_headers_held_ || resp_ == &local_resp_)) {
    out.append("content-length: ");
    http::appendDecimal(out, resp_body_.readable());
    out.append("\r\n");
  } else if (resp_->has_content_length && !listener_->any_response_body_hook) {
    out.append("content-length: ");
    http::appendDecimal(out, resp_->content_length);
    out.append("\r\n");
  } else if (req_->minor >= 1) {
    resp_chunked_down_ = true;
    out.append("transfer-encoding: chunked\r\n");
  } else {
    resp_close_delimited_ = true;
    close_after_ = true;
  }
  if (close_after_) {
    out.append("connection: close\r\n");
  } else if (req_->minor == 0) {
    out.append("connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

void Stream::sendResponseBody(std::string_view data, bool end) {
  network::Buffer& out = owner_.downstreamOut();
  if (!data.empty()) {
    bytes_out_ += data.size();
    if (resp_chunked_down_) {
      http::appendChunk(out, data);
    } else {
      out.append(data);
    }
  }
  if (end && resp_chunked_down_) {
    http::appendLastChunk(out, resp_ != nullptr ? &resp_->trailers : nullptr);
  }
  if (!end) {
    owner_.flushDownstream();
  }
}

void Stream::onReadDone() {
  owner_.flushDownstream();
}

void Stream::finishResponse() {
  timer_->disable();
  complete(close_after_ || !req_complete_);
}

void Stream::onUpstreamDrained() {
  owner_.readDisableDownstream(false);
}

void Stream::clearPending() {
  if (pending_) {
    pending_ = false;
    pool_->info().pending_requests.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Stream::onDownstreamDrained() {
  if (up_ != nullptr) {
    up_->readEnable(true);
  }
}

void Stream::onTunnelData(std::string_view data) {
  bytes_out_ += data.size();
  owner_.onTunnelData(data);
}

void Stream::onTunnelClosed() {
  up_ = nullptr;
  owner_.onTunnelClosed();
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

void Stream::sendLocalReply(uint32_t status, std::string_view body, uint32_t flags,
                            const sluice_header_t* headers, size_t header_count) {
  if (!active_ || local_reply_) {
    return;
  }
  flags_ |= flags;
  if (response_started_) {
    close_after_ = true;
    if (in_hook_ > 0) {
      local_reply_ = true;
      pending_complete_ = true;
    } else {
      complete(true);
    }
    return;
  }
  local_reply_ = true;
  if (in_hook_ > 0 && cur_filter_ != SIZE_MAX && !req_headers_done_) {
    resp_top_ = cur_filter_;
  }
  releaseUpstream(true);
  timer_->disable();
  if (!req_complete_) {
    close_after_ = true; // the rest of the request body will not be read
  }
  local_resp_.reset();
  http::HeaderMap& rh = local_resp_.headers;
  bool has_ct = false;
  for (size_t i = 0; i < header_count; i++) {
    std::string_view n(headers[i].name.ptr, headers[i].name.len);
    std::string_view v(headers[i].value.ptr, headers[i].value.len);
    has_ct = has_ct || http::iequals(n, "content-type");
    rh.add(n, v);
  }
  if (!body.empty() && !has_ct) {
    rh.addView("content-type", "text/plain");
  }
  resp_ = &local_resp_;
  status_ = status;
  resp_body_.clear();
  resp_body_.append(body);
  resp_complete_ = true;
  resp_headers_held_ = true;
  // Response header hooks of the filters before the replying one see the local reply.
  int saved_hook = in_hook_;
  in_hook_ = 0;
  for (size_t i = resp_top_; i-- > 0;) {
    ActiveFilter& f = filters_[i];
    auto hook = f.instance->desc->sluice_on_response_headers;
    if (f.object != nullptr && hook != nullptr) {
      runHook(i, hook, body.empty(), false);
      if (!active_) {
        return;
      }
    }
  }
  in_hook_ = saved_hook;
  sendResponseHead();
  if (!is_head_) {
    bytes_out_ += resp_body_.readable();
    owner_.downstreamOut().append(resp_body_.view());
  }
  resp_body_.clear();
  if (in_hook_ > 0) {
    pending_complete_ = true;
  } else {
    complete(close_after_);
  }
}

void Stream::complete(bool close_connection) {
  if (!active_) {
    return;
  }
  active_ = false;
  end_us_ = monoUs();
  timer_->disable();
  try_timer_->disable();
  if (up_ != nullptr) {
    releaseUpstream(!(upstream_request_done_ && resp_complete_));
  }
  releaseRetryBudget();
  for (auto& f : filters_) {
    if (f.object != nullptr && f.instance->desc->sluice_on_stream_complete != nullptr) {
      RunningFilterScope scope(f.instance);
      f.instance->desc->sluice_on_stream_complete(f.object, handle());
    }
  }
  stats::recordStream(worker_, listener_index_, *listener_, status_, end_us_ - start_us_, pool_,
                      upstream_head_us_ > 0);
  for (auto& f : filters_) {
    if (f.object != nullptr && f.instance->desc->sluice_on_stream_destroy != nullptr) {
      RunningFilterScope scope(f.instance);
      f.instance->desc->sluice_on_stream_destroy(f.object);
    }
    f.object = nullptr;
  }
  worker_.cancelStreamTimers(this);
  if (!worker_.calls().empty()) {
    HttpCalls::cancelForStream(worker_, this);
  }
  filters_.clear();
  snap_.reset();
  owner_.flushDownstream();
  owner_.onStreamDone(close_connection || close_after_);
}

void Stream::resume(sluice_direction_t dir) {
  if (!active_ || in_hook_ > 0) {
    return;
  }
  if (dir == SLUICE_DIRECTION_REQUEST) {
    if (req_pause_ == Pause::None) {
      return;
    }
    size_t at = req_pause_at_;
    req_pause_ = Pause::None;
    if (!req_headers_done_) {
      runRequestHeaders(at + 1);
    } else {
      runRequestBody(at + 1, req_complete_);
    }
    return;
  }
  if (resp_pause_ == Pause::None) {
    return;
  }
  size_t at = resp_pause_at_;
  resp_pause_ = Pause::None;
  if (!resp_headers_done_) {
    runResponseHeaders(at);
    if (!active_ || !resp_headers_done_) {
      return;
    }
    if (!resp_body_.empty() || resp_complete_) {
      runResponseBody(resp_top_, resp_complete_);
    }
    return;
  }
  runResponseBody(at, resp_complete_);
}

http::HeaderMap* Stream::headerMap(sluice_header_map_t map) {
  switch (map) {
  case SLUICE_HEADERS_REQUEST:
    return req_ != nullptr ? &req_->headers : nullptr;
  case SLUICE_HEADERS_RESPONSE:
    return resp_ != nullptr ? &resp_->headers : nullptr;
  case SLUICE_TRAILERS_REQUEST:
    return req_ != nullptr ? &req_->trailers : nullptr;
  case SLUICE_TRAILERS_RESPONSE:
    return resp_ != nullptr ? &resp_->trailers : nullptr;
  }
  return nullptr;
}

bool Stream::getHeader(sluice_header_map_t map, std::string_view name, size_t index,
                       std::string_view* out) {
  if (!name.empty() && name[0] == ':') {
    if (index != 0) {
      return false;
    }
    if (map == SLUICE_HEADERS_REQUEST && req_ != nullptr) {
      if (name == ":method") {
        *out = req_->method;
        return true;
      }
      if (name == ":path") {
        *out = path_;
        return true;
      }
      if (name == ":authority") {
        *out = req_->headers.get("host");
        return true;
      }
      if (name == ":scheme") {
        *out = listener_->config->tls ? "https" : "http";
        return true;
      }
    }
    if (map == SLUICE_HEADERS_RESPONSE && resp_ != nullptr && name == ":status") {
      char buf[8];
      int n = snprintf(buf, sizeof(buf), "%u", status_);
      *out = arena_.copy(std::string_view(buf, static_cast<size_t>(n)));
      return true;
    }
    return false;
  }
  http::HeaderMap* m = headerMap(map);
  if (m == nullptr) {
    return false;
  }
  const http::HeaderEntry* e = m->find(name, index);
  if (e == nullptr) {
    return false;
  }
  *out = e->value;
  return true;
}

void Stream::setHeader(sluice_header_map_t map, std::string_view name, std::string_view value,
                       bool append) {
  if (!name.empty() && name[0] == ':') {
    if (map == SLUICE_HEADERS_REQUEST && req_ != nullptr) {
      if (name == ":path") {
        path_ = arena_.copy(value);
        upstream_path_ = {};
      } else if (name == ":authority") {
        req_->headers.set("host", value);
      } else if (name == ":method") {
        req_->method = arena_.copy(value);
      }
    } else if (map == SLUICE_HEADERS_RESPONSE && name == ":status") {
      uint32_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') {
          return;
        }
        v = v * 10 + static_cast<uint32_t>(c - '0');
      }
      if (v >= 100 && v <= 599) {
        status_ = v;
      }
    }
    return;
  }
  http::HeaderMap* m = headerMap(map);
  if (m == nullptr) {
    return;
  }
  // Header values from filters must not smuggle line breaks onto the wire.
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return;
    }
  }
  if (append) {
    m->add(name, value);
  } else {
    m->set(name, value);
  }
}

size_t Stream::removeHeader(sluice_header_map_t map, std::string_view name) {
  http::HeaderMap* m = headerMap(map);
  return m == nullptr ? 0 : m->remove(name);
}

bool Stream::route(const sluice_route_t* r) {
  if (r == nullptr || r->size < offsetof(sluice_route_t, per_try_timeout_ms)) {
    return false;
  }
  std::string_view cluster(r->cluster.ptr, r->cluster.len);
  upstream::ClusterPool* pool = worker_.clusters().find(cluster);
  if (pool == nullptr) {
    return false;
  }
  pool_ = pool;
  routed_ = true;
  upstream_path_ = r->path.ptr != nullptr ? arena_.copy(std::string_view(r->path.ptr, r->path.len))
                                          : std::string_view();
  route_name_ = arena_.copy(std::string_view(r->route_name.ptr, r->route_name.len));
  timeout_ms_ = r->timeout_ms;
  retries_left_ = r->retry_attempts;
  retry_on_ = r->retry_on;
  per_try_timeout_ms_ = r->per_try_timeout_ms;
  return true;
}

bool Stream::metadataGet(std::string_view key, std::string_view* value) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) {
      *value = v;
      return true;
    }
  }
  return false;
}

void Stream::metadataSet(std::string_view key, std::string_view value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = arena_.copy(value);
      return;
    }
  }
  metadata_.emplace_back(arena_.copy(key), arena_.copy(value));
}

bool Stream::metadataAt(size_t i, std::string_view* key, std::string_view* value) const {
  if (i >= metadata_.size()) {
    return false;
  }
  *key = metadata_[i].first;
  *value = metadata_[i].second;
  return true;
}

void Stream::fillInfo(sluice_stream_info_t* info) {
  sluice_stream_info_t full{};
  full.size = sizeof(full);
  const std::string& peer = owner_.peerAddress();
  const std::string& ip = owner_.peerIp();
  full.client_address = {peer.data(), peer.size()};
  full.client_ip = {ip.data(), ip.size()};
  full.request_id = {request_id_.data(), request_id_.size()};
  if (listener_ != nullptr) {
    const std::string& ln = listener_->config->name;
    full.listener = {ln.data(), ln.size()};
    full.tls = listener_->config->tls.has_value();
  }
  full.protocol =
      (req_ != nullptr && req_->minor == 0) ? SLUICE_STR("HTTP/1.0") : SLUICE_STR("HTTP/1.1");
  full.route_name = {route_name_.data(), route_name_.size()};
  if (pool_ != nullptr) {
    const std::string& cn = pool_->info().name();
    full.upstream_cluster = {cn.data(), cn.size()};
  }
  full.upstream_endpoint = {endpoint_address_.data(), endpoint_address_.size()};
  full.response_flags = flags_;
  full.response_status = status_;
  full.start_unix_us = start_unix_us_;
  uint64_t end = active_ ? monoUs() : end_us_;
  full.duration_us = end - start_us_;
  full.upstream_duration_us = upstream_head_us_ > 0 ? upstream_head_us_ - upstream_start_us_ : 0;
  full.bytes_in = bytes_in_;
  full.bytes_out = bytes_out_;
  full.response_details = {response_details_.data(), response_details_.size()};
  uint32_t n = info->size < sizeof(full) ? info->size : static_cast<uint32_t>(sizeof(full));
  std::memcpy(info, &full, n);
  info->size = n;
}

} // namespace sluice::filter
