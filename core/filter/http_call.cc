#include "core/filter/http_call.h"

#include "core/filter/stream.h"
#include "core/http/codec.h"

#include <string>
#include <vector>

namespace sluice::filter {

namespace {

class HttpCall : public upstream::ResponseHandler,
                 public event::DeferredDeletable,
                 public HttpCallLink {
public:
  HttpCall(WorkerContext& w, uint64_t id, Stream* stream, sluice_http_callback_t cb, void* data)
      : worker_(w), id_(id), stream_(stream), cb_(cb), data_(data), owner_(runningFilter()) {
    if (stream_ != nullptr) {
      HttpCallLink*& head = stream_->httpCalls();
      next = head;
      if (head != nullptr) {
        head->prev = this;
      }
      head = this;
    }
  }
  ~HttpCall() override {
    unlink();
    if (conn_ != nullptr) {
      conn_->abort();
    }
  }

  uint64_t id() const { return id_; }

  bool start(upstream::ClusterPool* pool, std::string_view method, std::string_view path,
             const sluice_header_t* headers, size_t n, std::string_view body, uint32_t timeout_ms) {
    int ep = pool->pickEndpoint();
    if (ep < 0) {
      return false;
    }
    conn_ = pool->acquire(static_cast<size_t>(ep));
    if (conn_ == nullptr) {
      return false;
    }
    conn_->attach(this, method == "HEAD");
    network::Buffer& out = conn_->out();
    out.append(method);
    out.append(' ');
    out.append(path);
    out.append(" HTTP/1.1\r\n");
    bool has_host = false;
    for (size_t i = 0; i < n; i++) {
      std::string_view hn(headers[i].name.ptr, headers[i].name.len);
      std::string_view hv(headers[i].value.ptr, headers[i].value.len);
      if (http::iequals(hn, "content-length") || http::iequals(hn, "transfer-encoding") ||
          http::iequals(hn, "connection")) {
        continue;
      }
      has_host = has_host || http::iequals(hn, "host");
      http::appendHeader(out, hn, hv);
    }
    if (!has_host) {
      http::appendHeader(out, "host", pool->info().name());
    }
    if (!body.empty() || method == "POST" || method == "PUT") {
      out.append("content-length: ");
      http::appendDecimal(out, body.size());
      out.append("\r\n");
    }
    out.append("\r\n");
    out.append(body);
    conn_->flush();
    if (conn_ != nullptr) {
      conn_->requestComplete();
    }
    if (timeout_ms > 0) {
      timer_ = worker_.dispatcher().createTimer([this] { finish(0, "timeout"); });
      timer_->enable(timeout_ms);
    }
    return true;
  }

  void onResponseHead(http::MessageHead& head) override {
    status_ = head.status;
    for (const auto& e : head.headers.entries()) {
      header_store_.emplace_back(std::string(e.name), std::string(e.value));
    }
  }
  void onResponseData(std::string_view data) override {
    if (body_.size() + data.size() > HttpCalls::kMaxResponseBytes) {
      finish(0, "response_too_large");
      return;
    }
    body_.append(data);
  }
  void onResponseComplete() override {
    upstream::UpstreamConnection* c = conn_;
    conn_ = nullptr;
    c->done();
    finish(status_, {});
  }
  void onUpstreamFailure(upstream::Failure f, bool) override {
    conn_ = nullptr;
    finish(0, f == upstream::Failure::ConnectFailure || f == upstream::Failure::ConnectTimeout
                  ? "connect_failure"
                  : "reset");
  }
  void onTunnelData(std::string_view) override {}
  void onTunnelClosed() override { conn_ = nullptr; }

  void finish(uint32_t status, std::string_view error) {
    if (done_) {
      return;
    }
    done_ = true;
    unlink(); // the callback may end the stream: this call is no longer one to cancel
    if (conn_ != nullptr) {
      conn_->abort();
      conn_ = nullptr;
    }
    std::vector<sluice_header_t> hs;
    hs.reserve(header_store_.size());
    for (const auto& [n, v] : header_store_) {
      hs.push_back({{n.data(), n.size()}, {v.data(), v.size()}});
    }
    sluice_http_response_t r{};
    r.size = sizeof(r);
    r.status = status;
    r.headers = hs.data();
    r.header_count = hs.size();
    r.body = {body_.data(), body_.size()};
    r.error = {error.data(), error.size()};
    {
      RunningFilterScope scope(owner_);
      cb_(data_, &r);
    }
    // Remove ourselves (deleted after this callback unwinds).
    auto& calls = worker_.calls();
    auto it = calls.find(id_);
    if (it != calls.end()) {
      worker_.dispatcher().deferredDelete(std::move(it->second));
      calls.erase(it);
    }
  }

  // Leaves the stream's list (idempotent): once finished or cancelled, a call is the stream's no
  // longer.
  void unlink() {
    if (stream_ == nullptr) {
      return;
    }
    if (prev != nullptr) {
      prev->next = next;
    } else {
      stream_->httpCalls() = next;
    }
    if (next != nullptr) {
      next->prev = prev;
    }
    prev = next = nullptr;
    stream_ = nullptr;
  }

  void cancelNow() {
    unlink();
    done_ = true;
    if (conn_ != nullptr) {
      conn_->abort();
      conn_ = nullptr;
    }
    timer_.reset();
  }

private:
  WorkerContext& worker_;
  uint64_t id_;
  Stream* stream_;
  sluice_http_callback_t cb_;
  void* data_;
  const FilterInstance* owner_; // the filter that made the call: its callback runs as it
  upstream::UpstreamConnection* conn_ = nullptr;
  event::TimerPtr timer_;
  uint32_t status_ = 0;
  std::string body_;
  std::vector<std::pair<std::string, std::string>> header_store_;
  bool done_ = false;
};

} // namespace

sluice_call_id_t HttpCalls::start(WorkerContext& worker, Stream* stream, std::string_view cluster,
                                  std::string_view method, std::string_view path,
                                  const sluice_header_t* headers, size_t header_count,
                                  std::string_view body, uint32_t timeout_ms,
                                  sluice_http_callback_t cb, void* user_data) {
  upstream::ClusterPool* pool = worker.clusters().find(cluster);
  if (pool == nullptr || method.empty() || path.empty() || path[0] != '/') {
    return 0;
  }
  uint64_t id = worker.nextCallId();
  auto call = std::make_unique<HttpCall>(worker, id, stream, cb, user_data);
  HttpCall* raw = call.get();
  worker.calls().emplace(id, std::move(call));
  if (!raw->start(pool, method, path, headers, header_count, body, timeout_ms)) {
    worker.calls().erase(id);
    return 0;
  }
  return id;
}

void HttpCalls::cancel(WorkerContext& worker, sluice_call_id_t id) {
  auto it = worker.calls().find(id);
  if (it != worker.calls().end()) {
    static_cast<HttpCall*>(it->second.get())->cancelNow();
    worker.dispatcher().deferredDelete(std::move(it->second));
    worker.calls().erase(it);
  }
}

void HttpCalls::cancelForStream(WorkerContext& worker, Stream* stream) {
  while (stream->httpCalls() != nullptr) {
    auto* call = static_cast<HttpCall*>(stream->httpCalls());
    call->cancelNow(); // unlinks it
    auto it = worker.calls().find(call->id());
    if (it != worker.calls().end()) {
      worker.dispatcher().deferredDelete(std::move(it->second));
      worker.calls().erase(it);
    }
  }
}

} // namespace sluice::filter
