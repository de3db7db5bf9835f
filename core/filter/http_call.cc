#include "core/filter/http_call.h"

#include "core/filter/stream.h"
#include "core/http/codec.h"

#include <string>
#include <vector>

namespace sluice::filter {

namespace {

// Above this many bytes, a slot gives its response buffers back when it is released, so one
// large answer does not pin memory in a slot for the worker's life.
constexpr size_t kKeepBytes = 64 * 1024;

// One outgoing call. Slots are made once per worker and reused (WorkerContext::callSlots), with
// their buffers and timer, so a call in steady state allocates nothing. A call id is
// (use << 32) | (slot + 1): an id from an earlier use of the slot finds nothing.
class HttpCall : public upstream::ResponseHandler,
                 public event::DeferredDeletable,
                 public event::DeferredCall,
                 public HttpCallLink {
public:
  HttpCall(WorkerContext& w, uint32_t slot) : worker_(w), slot_(slot) {}
  ~HttpCall() override {
    unlink();
    if (conn_ != nullptr) {
      conn_->abort();
    }
  }

  uint64_t id() const { return id_; }
  bool live() const { return in_use_ && !retiring_; }

  void begin(Stream* stream, sluice_http_callback_t cb, void* data) {
    uses_++;
    id_ = (uint64_t{uses_} << 32) | (uint64_t{slot_} + 1);
    stream_ = stream;
    cb_ = cb;
    data_ = data;
    owner_ = runningFilter();
    in_use_ = true;
    retiring_ = false;
    done_ = false;
    status_ = 0;
    if (stream_ != nullptr) {
      HttpCallLink*& head = stream_->httpCalls();
      next = head;
      if (head != nullptr) {
        head->prev = this;
      }
      head = this;
    }
  }

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
      if (!timer_) {
        timer_ = worker_.dispatcher().createTimer([this] { finish(0, "timeout"); });
      }
      timer_->enable(timeout_ms);
    }
    return true;
  }

  void onResponseHead(http::MessageHead& head) override {
    status_ = head.status;
    for (const auto& e : head.headers.entries()) {
      const auto at = static_cast<uint32_t>(header_bytes_.size());
      header_bytes_.append(e.name);
      header_bytes_.append(e.value);
      header_spans_.push_back({at, static_cast<uint32_t>(e.name.size()),
                               static_cast<uint32_t>(e.value.size())});
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
    stopIo();
    headers_.clear();
    for (const HeaderSpan& h : header_spans_) {
      const char* base = header_bytes_.data() + h.at;
      headers_.push_back({{base, h.name_len}, {base + h.name_len, h.value_len}});
    }
    sluice_http_response_t r{};
    r.size = sizeof(r);
    r.status = status;
    r.headers = headers_.data();
    r.header_count = headers_.size();
    r.body = {body_.data(), body_.size()};
    r.error = {error.data(), error.size()};
    {
      RunningFilterScope scope(owner_);
      cb_(data_, &r);
    }
    retire();
  }

  // Cancelled by its filter or its stream's end: no callback.
  void cancelNow() {
    unlink();
    done_ = true;
    stopIo();
    retire();
  }

  // Back to the free list once the current callback has unwound (this object may still be on
  // the stack below it).
  void retire() {
    if (!retiring_) {
      retiring_ = true;
      worker_.dispatcher().deferCall(*this);
    }
  }

  void onDeferredCall() override {
    in_use_ = false;
    retiring_ = false;
    stream_ = nullptr;
    cb_ = nullptr;
    data_ = nullptr;
    owner_ = nullptr;
    clearKeeping(body_);
    clearKeeping(header_bytes_);
    header_spans_.clear();
    headers_.clear();
    worker_.freeCallSlots().push_back(slot_);
  }

private:
  struct HeaderSpan {
    uint32_t at;
    uint32_t name_len;
    uint32_t value_len;
  };

  static void clearKeeping(std::string& s) {
    if (s.capacity() > kKeepBytes) {
      std::string().swap(s);
    } else {
      s.clear();
    }
  }

  void stopIo() {
    if (conn_ != nullptr) {
      conn_->abort();
      conn_ = nullptr;
    }
    if (timer_) {
      timer_->disable();
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

  WorkerContext& worker_;
  const uint32_t slot_;
  uint32_t uses_ = 0;
  uint64_t id_ = 0;
  Stream* stream_ = nullptr;
  sluice_http_callback_t cb_ = nullptr;
  void* data_ = nullptr;
  const FilterInstance* owner_ = nullptr; // the filter that made the call: its callback runs as it
  upstream::UpstreamConnection* conn_ = nullptr;
  event::TimerPtr timer_;
  uint32_t status_ = 0;
  std::string body_;
  std::string header_bytes_;              // names and values of the response head, back to back
  std::vector<HeaderSpan> header_spans_;  // where each header is in header_bytes_
  std::vector<sluice_header_t> headers_;  // what the callback sees
  bool in_use_ = false;
  bool retiring_ = false;
  bool done_ = false;
};

// The live call with this id, or null (an unknown id, or one from an earlier use of its slot).
HttpCall* findCall(WorkerContext& worker, sluice_call_id_t id) {
  const uint64_t slot = (id & 0xffffffffu);
  auto& slots = worker.callSlots();
  if (slot == 0 || slot > slots.size()) {
    return nullptr;
  }
  auto* call = static_cast<HttpCall*>(slots[slot - 1].get());
  return call->id() == id && call->live() ? call : nullptr;
}

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
  auto& slots = worker.callSlots();
  auto& free = worker.freeCallSlots();
  HttpCall* call = nullptr;
  if (!free.empty()) {
    call = static_cast<HttpCall*>(slots[free.back()].get());
    free.pop_back();
  } else {
    const auto slot = static_cast<uint32_t>(slots.size());
    slots.push_back(std::make_unique<HttpCall>(worker, slot));
    call = static_cast<HttpCall*>(slots.back().get());
  }
  call->begin(stream, cb, user_data);
  if (!call->start(pool, method, path, headers, header_count, body, timeout_ms)) {
    call->cancelNow();
    return 0;
  }
  return call->id();
}

void HttpCalls::cancel(WorkerContext& worker, sluice_call_id_t id) {
  if (HttpCall* call = findCall(worker, id)) {
    call->cancelNow();
  }
}

void HttpCalls::cancelForStream(WorkerContext&, Stream* stream) {
  while (stream->httpCalls() != nullptr) {
    static_cast<HttpCall*>(stream->httpCalls())->cancelNow(); // unlinks it
  }
}

} // namespace sluice::filter
