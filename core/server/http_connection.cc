#include "core/server/http_connection.h"

#include "core/common/assert.h"
#include "core/common/logger.h"
#include "core/server/worker.h"

namespace sluice::server {

Exchange::Exchange(filter::WorkerContext& worker, filter::StreamOwner& owner)
    : parser(http::MessageType::Request, arena, 0), stream(worker, owner) {}

ExchangePool::ExchangePool(filter::WorkerContext& worker) : worker_(worker) {
  free_.reserve(kMaxCached);
}

ExchangePool::~ExchangePool() {
  close();
}

void ExchangePool::close() {
  max_cached_ = 0;
  for (Exchange* ex : free_) {
    network::BlockPool::unpoisonCached(ex, sizeof(Exchange));
    delete ex;
  }
  free_.clear();
}

Exchange* ExchangePool::take(filter::StreamOwner& owner, http::BodySink& sink,
                             uint64_t max_head_bytes) {
  Exchange* ex;
  if (free_.empty()) {
    ex = new Exchange(worker_, owner);
  } else {
    ex = free_.back();
    free_.pop_back();
    network::BlockPool::unpoisonCached(ex, sizeof(Exchange));
    ex->stream.setOwner(owner);
    ex->parser.reset();
  }
  ex->parser.setBodySink(&sink);
  ex->parser.setMaxHeadBytes(max_head_bytes);
  return ex;
}

void ExchangePool::give(Exchange* ex) {
  SLUICE_ASSERT(!ex->stream.active(), "an active stream given back to the pool");
  ex->head_buf.release();
  ex->arena.release();
  ex->stream.arena().release();
  ex->stream.bodyBuffer(SLUICE_DIRECTION_REQUEST).release();
  ex->stream.bodyBuffer(SLUICE_DIRECTION_RESPONSE).release();
  if (free_.size() >= max_cached_) {
    delete ex;
    return;
  }
  free_.push_back(ex);
  network::BlockPool::poisonCached(ex, sizeof(Exchange));
}

HttpConnection::HttpConnection(Worker& worker, filter::WorkerSnapshotPtr snap,
                               size_t listener_index)
    : worker_(worker), snap_(std::move(snap)), listener_index_(listener_index),
      cfg_(snap_->snapshot().listeners[listener_index].config), listener_name_(cfg_->name),
      conn_(worker.dispatcher(), *this) {
  timer_ = worker.dispatcher().createTimer([this] { onTimer(); });
}

HttpConnection::~HttpConnection() {
  destroyed_ = true;
  if (streamActive()) {
    ex_->stream.onDownstreamReset();
  }
  releaseExchange();
  endRequest();
  if (buffered_accounted_ > 0) {
    worker_.addBufferedBytes(-static_cast<int64_t>(buffered_accounted_));
    buffered_accounted_ = 0;
  }
  if (tunnel_ != nullptr) {
    tunnel_->abort();
    tunnel_ = nullptr;
  }
  conn_.close();
}

int HttpConnection::accept(uv_stream_t* server) {
  int rc = conn_.accept(server);
  return rc != 0 ? rc : startServing();
}

int HttpConnection::adopt(int fd) {
  int rc = conn_.adopt(fd);
  return rc != 0 ? rc : startServing();
}

int HttpConnection::startServing() {
  if (const auto& tls = snap_->snapshot().listeners[listener_index_].tls) {
    if (!conn_.enableTls(*tls)) {
      return UV_ENOMEM;
    }
  }
  conn_.readEnable(true);
  armHeaderTimer();
  return 0;
}

bool HttpConnection::draining() const {
  return worker_.draining() || listener_removed_;
}

bool HttpConnection::refreshSnapshot() {
  const filter::WorkerSnapshotPtr& live = worker_.context().current();
  if (live == snap_) {
    return true;
  }
  const auto& listeners = live->snapshot().listeners;
  for (size_t i = 0; i < listeners.size(); i++) {
    if (listeners[i].config->name == listener_name_) {
      snap_ = live;
      listener_index_ = i;
      cfg_ = listeners[i].config;
      return true;
    }
  }
  return false;
}

void HttpConnection::armHeaderTimer() {
  timer_kind_ = TimerKind::Header;
  timer_->enable(cfg_->limits.header_timeout_ms);
}

void HttpConnection::armIdleTimer() {
  timer_kind_ = TimerKind::Idle;
  timer_->enable(cfg_->limits.idle_timeout_ms);
  // Between requests nothing points into the Exchange: it goes back to the worker's pool once
  // this callback has unwound (the stream that just ended may still be on the stack), and the
  // read and write buffers' blocks go back to the BlockPool now, so an idle keep-alive
  // connection holds no buffer memory. The next request takes pooled ones again, without malloc.
  if (ex_ != nullptr) {
    worker_.dispatcher().deferCall(*this);
  }
  if (conn_.readBuffer().empty()) {
    conn_.readBuffer().release();
  }
  if (conn_.writeBuffer().empty()) {
    conn_.writeBuffer().release(); // written out already (a larger reply: libuv holds its own)
  }
}

void HttpConnection::onDeferredCall() {
  if (ex_ != nullptr && !destroyed_ && !closing_ && tunnel_ == nullptr && !streamActive() &&
      timer_kind_ == TimerKind::Idle && conn_.readBuffer().empty() && betweenRequests()) {
    releaseExchange();
  }
}

void HttpConnection::releaseExchange() {
  if (ex_ != nullptr) {
    worker_.exchanges().give(ex_);
    ex_ = nullptr;
  }
}

void HttpConnection::onTimer() {
  if (closing_ || streamActive()) {
    return;
  }
  if (timer_kind_ == TimerKind::Header && ex_ != nullptr && ex_->parser.messageStarted()) {
    protocolError(408);
    return;
  }
  // Idle keep-alive connection, or a client that never sent a byte.
  destroy();
}

void HttpConnection::onData() {
  if (tunnel_ != nullptr) {
    network::Buffer& in = conn_.readBuffer();
    tunnel_->out().append(in.view());
    in.clear();
    tunnel_->flush();
    if (tunnel_ != nullptr && tunnel_->aboveHighWatermark()) {
      conn_.readEnable(false);
    }
    return;
  }
  if (!streamActive() && timer_kind_ == TimerKind::Idle) {
    armHeaderTimer();
  }
  processInput();
  accountBuffered();
}

void HttpConnection::flushDownstream() {
  conn_.flush();
  accountBuffered();
}

void HttpConnection::accountBuffered() {
  if (destroyed_) {
    return;
  }
  uint64_t now = conn_.readBuffer().readable() + conn_.pendingBytes();
  if (now != buffered_accounted_) {
    worker_.addBufferedBytes(static_cast<int64_t>(now) - static_cast<int64_t>(buffered_accounted_));
    buffered_accounted_ = now;
  }
}

void HttpConnection::endRequest() {
  if (request_counted_) {
    request_counted_ = false;
    worker_.requestEnded();
  }
}

void HttpConnection::shed(const char* reason) {
  worker_.recordShed(reason);
  network::Buffer& out = conn_.writeBuffer();
  static constexpr std::string_view kBody = "overloaded\n";
  http::appendStatusLine(out, 503);
  out.append("content-type: text/plain\r\ncontent-length: ");
  http::appendDecimal(out, kBody.size());
  out.append("\r\nconnection: close\r\n\r\n");
  out.append(kBody);
  worker_.recordProtocolError(snap_->snapshot().listeners[listener_index_], 503);
  closing_ = true;
  timer_->disable();
  conn_.closeAfterFlush();
}

void HttpConnection::processInput() {
  if (in_parse_ || closing_) {
    return;
  }
  network::Buffer& in = conn_.readBuffer();
  if (ex_ == nullptr) {
    if (in.empty()) {
      return; // still idle
    }
    ex_ = worker_.exchanges().take(*this, *this, cfg_->limits.max_request_headers_bytes);
    need_resume_ = false;
  }
  in_parse_ = true;
  http::Parser& parser = ex_->parser;
  filter::Stream& stream = ex_->stream;
  while (!in.empty() && !closing_ && tunnel_ == nullptr) {
    if (stream.active() && request_done_) {
      // A pipelined request waits until the current response is done; stop reading if a
      // client floods us meanwhile.
      if (in.readable() > cfg_->limits.max_request_headers_bytes) {
        conn_.readEnable(false);
      }
      break;
    }
    if (need_resume_) {
      parser.resume();
      need_resume_ = false;
      ex_->arena.reset();
    }
    bool head_ready = false;
    http::ParseEvent ev = http::parseStep(parser, in, ex_->head_buf, &head_ready);
    if (ev == http::ParseEvent::Error) {
      protocolError(parser.error() == http::ParseError::HeadersTooLarge ? 431 : 400);
      break;
    }
    if (head_ready) {
      timer_->disable();
      timer_kind_ = TimerKind::None;
      request_done_ = parser.head().no_body;
      if (!refreshSnapshot()) {
        protocolError(503);
        break;
      }
      if (const char* reason = worker_.shedReason()) {
        shed(reason);
        break;
      }
      if (!request_counted_) {
        worker_.requestStarted();
        request_counted_ = true;
      }
      stream.begin(snap_, listener_index_, parser.head(), worker_.dispatcher().nowMs());
    }
    if (ev == http::ParseEvent::HeadComplete) {
      parser.resume();
      continue;
    }
    if (ev == http::ParseEvent::MessageComplete) {
      request_done_ = true;
      need_resume_ = true;
      if (stream.active()) {
        stream.onRequestEnd();
      }
      if (parser.head().upgrade) {
        break; // the rest is tunnel data if the upstream agrees
      }
      continue;
    }
    if (ev == http::ParseEvent::NeedMore) {
      break;
    }
    if (ev == http::ParseEvent::Upgrade) {
      break;
    }
  }
  in_parse_ = false;
  if (!closing_ && !stream.active() && tunnel_ == nullptr && !destroyed_) {
    if (in.empty() && timer_kind_ == TimerKind::None) {
      armIdleTimer();
    }
  }
}

void HttpConnection::onBodyData(std::string_view data) {
  if (streamActive()) {
    ex_->stream.onRequestData(data);
  }
}

void HttpConnection::protocolError(uint32_t status) {
  if (streamActive()) {
    if (!ex_->stream.responseStarted()) {
      ex_->stream.sendLocalReply(
          status, status == 431 ? "request header fields too large\n" : "bad request\n", 0);
    } else {
      ex_->stream.onDownstreamReset();
    }
  } else {
    // No stream yet (a bad head): answer directly.
    network::Buffer& out = conn_.writeBuffer();
    http::appendStatusLine(out, status);
    std::string_view body = status == 431   ? "request header fields too large\n"
                            : status == 408 ? "request timeout\n"
                            : status == 503 ? "listener removed\n"
                                            : "bad request\n";
    out.append("content-type: text/plain\r\ncontent-length: ");
    http::appendDecimal(out, body.size());
    out.append("\r\nconnection: close\r\n\r\n");
    out.append(body);
    worker_.recordProtocolError(snap_->snapshot().listeners[listener_index_], status);
  }
  closing_ = true;
  timer_->disable();
  conn_.closeAfterFlush();
}

void HttpConnection::readDisableDownstream(bool disable) {
  if (closing_ || tunnel_ != nullptr) {
    return;
  }
  read_disabled_by_stream_ = disable;
  conn_.readEnable(!disable);
}

void HttpConnection::onStreamDone(bool close_connection) {
  endRequest();
  if (destroyed_) {
    return;
  }
  accountBuffered();
  if (close_connection || worker_.draining()) {
    closing_ = true;
    timer_->disable();
    conn_.closeAfterFlush();
    return;
  }
  if (!conn_.readEnabled()) {
    conn_.readEnable(true);
  }
  if (!request_done_) {
    // Response finished before the request body: the rest of the request cannot be framed
    // reliably on this connection.
    closing_ = true;
    conn_.closeAfterFlush();
    return;
  }
  armIdleTimer();
  if (!in_parse_ && !conn_.readBuffer().empty()) {
    // Pipelined requests already buffered: serve the next one on the next loop turn would add
    // latency; serve it now (we are not inside the parse loop).
    processInput();
  }
}

void HttpConnection::onTunnelStart(upstream::UpstreamConnection* up) {
  tunnel_ = up;
  timer_->disable();
  network::Buffer& in = conn_.readBuffer();
  if (!in.empty()) {
    tunnel_->out().append(in.view());
    in.clear();
    tunnel_->flush();
  }
  conn_.readEnable(true);
}

void HttpConnection::onTunnelData(std::string_view data) {
  conn_.writeBuffer().append(data);
  flushDownstream();
}

void HttpConnection::onTunnelClosed() {
  tunnel_ = nullptr;
  if (streamActive()) {
    ex_->stream.onDownstreamReset();
  }
  closing_ = true;
  conn_.closeAfterFlush();
}

void HttpConnection::onRemoteClose(int) {
  if (closing_ && conn_.closed()) {
    destroy();
    return;
  }
  if (tunnel_ != nullptr) {
    upstream::UpstreamConnection* t = tunnel_;
    tunnel_ = nullptr;
    t->abort();
  }
  if (streamActive()) {
    ex_->stream.onDownstreamReset();
  }
  destroy();
}

void HttpConnection::onWriteDrained() {
  accountBuffered();
  if (tunnel_ != nullptr) {
    tunnel_->readEnable(true);
    return;
  }
  if (ex_ != nullptr) {
    ex_->stream.onDownstreamDrained();
  }
}

void HttpConnection::onLocalClose() {
  destroy();
}

void HttpConnection::drain() {
  // Idle: no stream and no part of a next request head. Not messageStarted(): after a request
  // without a body the parser reports its end only when the next bytes arrive, so it still
  // counts as started on an idle keep-alive connection.
  if (idle() && betweenRequests()) {
    destroy();
  }
}

void HttpConnection::onSnapshotChanged() {
  if (refreshSnapshot()) {
    return;
  }
  listener_removed_ = true; // the current response carries Connection: close
  // Idle as in drain().
  if (idle() && betweenRequests()) {
    destroy();
  }
}

void HttpConnection::abort() {
  if (tunnel_ != nullptr) {
    upstream::UpstreamConnection* t = tunnel_;
    tunnel_ = nullptr;
    t->abort();
  }
  if (streamActive()) {
    ex_->stream.onDownstreamReset();
  }
  destroy();
}

void HttpConnection::destroy() {
  if (destroyed_) {
    return;
  }
  destroyed_ = true;
  closing_ = true;
  timer_->disable();
  if (streamActive()) {
    ex_->stream.onDownstreamReset();
  }
  endRequest();
  if (buffered_accounted_ > 0) {
    worker_.addBufferedBytes(-static_cast<int64_t>(buffered_accounted_));
    buffered_accounted_ = 0;
  }
  conn_.close();
  worker_.removeConnection(this);
}

} // namespace sluice::server
