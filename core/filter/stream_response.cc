#include "core/filter/stream.h"

#include "core/filter/proxy_headers.h"

#include <cstdio>

// The response side of a Stream: the upstream's head through the response hooks, the head and
// body written to the client, local replies, and bench mode's synthetic upstream.

namespace sluice::filter {

namespace {
constexpr sluice_direction_t kRequest = SLUICE_DIRECTION_REQUEST;
constexpr sluice_direction_t kResponse = SLUICE_DIRECTION_RESPONSE;
} // namespace

void Stream::onUpstreamHead(http::MessageHead& head) {
  resp_ = &head;
  status_ = head.status;
  if (head.status == 101) {
    if (!upgrade_) {
      upstream_.onUpstreamFailure(upstream::Failure::BadResponse, false);
      return;
    }
    upstream_.disableTimeout();
    sendResponseHead();
    owner_->flushDownstream();
    upstream::UpstreamConnection* c = upstream_.connection();
    owner_->onTunnelStart(c);
    c->startTunnel();
    return;
  }
  fm_.runHeaders(kResponse, fm_.first(kResponse));
}

void Stream::responseHeadersDone() {
  bool body_hooks = listener_->any_response_body_hook;
  if (resp_complete_ && (fm_.responseHeld() || body_hooks)) {
    fm_.runBody(kResponse, fm_.first(kResponse), true);
    return;
  }
  if (!body_hooks) {
    sendResponseHead();
  }
  // Resumed after a pause: what arrived meanwhile goes through the body hooks now.
  if (active_ && !resp_body_.empty()) {
    fm_.runBody(kResponse, fm_.first(kResponse), false);
  }
}

void Stream::onResponseData(std::string_view data) {
  if (!active_) {
    return;
  }
  if (!fm_.headersDone(kResponse) || fm_.paused(kResponse) ||
      listener_->any_response_body_hook) {
    resp_body_.append(data);
    if (fm_.headersDone(kResponse) && !fm_.paused(kResponse)) {
      fm_.runBody(kResponse, fm_.first(kResponse), false);
    }
  } else {
    sendResponseBody(data, false);
  }
  if (upstream_.attached() && (owner_->downstreamAboveHighWatermark() ||
                               resp_body_.readable() > network::Connection::kHighWatermark)) {
    upstream_.readEnable(false);
  }
}

void Stream::sendBufferedResponse(bool end) {
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
  if (resp_ != nullptr && resp_->trailers.size() > 0 && !fm_.runTrailers(kResponse)) {
    return;
  }
  if (!fm_.messageComplete(kResponse)) {
    return;
  }
  if (listener_->any_response_body_hook) {
    fm_.runBody(kResponse, fm_.first(kResponse), true);
    return;
  }
  // Already streamed as it came: only the end is left.
  sendResponseBody({}, true);
  finishResponse();
}

void Stream::sendResponseHead() {
  if (response_started_) {
    return;
  }
  response_started_ = true;
  network::Buffer& out = owner_->downstreamOut();
  http::appendStatusLine(out, status_);
  ProxyHead ph;
  ph.request_id_header = listener_->config->request_id.header;
  ph.request_id = request_id_;
  if (owner_->draining()) {
    close_after_ = true;
  }
  if (status_ == 101) {
    ph.framing = BodyFraming::Upgrade;
    ph.upgrade = resp_->headers.get("upgrade");
    writeProxyHeaders(out, resp_->headers, ph);
    return;
  }
  if (resp_->no_body || status_ == 204 || status_ == 304) {
    if (is_head_ && resp_->has_content_length) {
      ph.framing = BodyFraming::ContentLength;
      ph.content_length = resp_->content_length;
    }
  } else if (resp_complete_ && (fm_.responseHeld() || resp_ == &local_resp_)) {
    ph.framing = BodyFraming::ContentLength;
    ph.content_length = resp_body_.readable();
  } else if (resp_->has_content_length && !listener_->any_response_body_hook) {
    ph.framing = BodyFraming::ContentLength;
    ph.content_length = resp_->content_length;
  } else if (req_->minor >= 1) {
    resp_chunked_down_ = true;
    ph.framing = BodyFraming::Chunked;
  } else {
    close_after_ = true; // delimited by the close
  }
  if (close_after_) {
    ph.connection = ConnectionField::Close;
  } else if (req_->minor == 0) {
    ph.connection = ConnectionField::KeepAlive;
  }
  writeProxyHeaders(out, resp_->headers, ph);
}

void Stream::sendResponseBody(std::string_view data, bool end) {
  network::Buffer& out = owner_->downstreamOut();
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
    owner_->flushDownstream();
  }
}

void Stream::finishResponse() {
  upstream_.disableTimeout();
  complete(close_after_ || !req_complete_);
}

void Stream::respondSynthetic() {
  const SyntheticUpstream& s = *worker_.syntheticUpstream();
  upstream_.setRequestDone();
  local_resp_.reset();
  local_resp_.status = s.status;
  local_resp_.headers.addView("content-type", "text/plain");
  char len[24];
  int n = snprintf(len, sizeof(len), "%zu", s.body.size());
  local_resp_.headers.add("content-length", std::string_view(len, static_cast<size_t>(n)));
  local_resp_.has_content_length = true;
  local_resp_.content_length = s.body.size();
  local_resp_.no_body = s.body.empty() || is_head_;
  upstream_.onResponseHead(local_resp_);
  if (active_ && !local_resp_.no_body) {
    onResponseData(s.body);
  }
  if (active_) {
    onResponseComplete();
  }
}

void Stream::sendLocalReply(uint32_t status, std::string_view body, uint32_t flags,
                            const sluice_header_t* headers, size_t header_count) {
  if (!active_ || local_reply_) {
    return;
  }
  flags_ |= flags;
  if (response_started_) {
    close_after_ = true;
    if (fm_.inHook()) {
      local_reply_ = true;
      pending_complete_ = true;
    } else {
      complete(true);
    }
    return;
  }
  local_reply_ = true;
  if (fm_.inHook() && fm_.currentFilter() != SIZE_MAX && !fm_.headersDone(kRequest)) {
    fm_.limitResponse(fm_.currentFilter());
  }
  upstream_.release(true);
  upstream_.disableTimeout();
  if (!req_complete_) {
    close_after_ = true; // the rest of the request body will not be read
  }
  local_resp_.reset();
  http::HeaderMap& rh = local_resp_.headers;
  // A body goes out as text/plain unless the replying filter set a content-type or removed it:
  // `content-type` with an empty value (never valid on the wire, RFC 9110 8.3) means "send
  // none" (the router's response_headers_to_remove). The default is added before the response
  // hooks of the filters before this one, so they can replace or remove it too.
  bool ct_given = false;
  for (size_t i = 0; i < header_count; i++) {
    std::string_view n(headers[i].name.ptr, headers[i].name.len);
    std::string_view v(headers[i].value.ptr, headers[i].value.len);
    bool is_ct = http::iequals(n, "content-type");
    ct_given = ct_given || is_ct;
    if (!(is_ct && v.empty())) {
      rh.add(n, v);
    }
  }
  if (!body.empty() && !ct_given) {
    rh.addView("content-type", "text/plain");
  }
  resp_ = &local_resp_;
  status_ = status;
  resp_body_.clear();
  resp_body_.append(body);
  resp_complete_ = true;
  fm_.holdResponse();
  // Response header hooks of the filters before the replying one see the local reply.
  if (!fm_.runLocalReplyHeaders(body.empty())) {
    return;
  }
  sendResponseHead();
  if (!is_head_) {
    bytes_out_ += resp_body_.readable();
    owner_->downstreamOut().append(resp_body_.view());
  }
  resp_body_.clear();
  if (fm_.inHook()) {
    pending_complete_ = true;
  } else {
    complete(close_after_);
  }
}

} // namespace sluice::filter
