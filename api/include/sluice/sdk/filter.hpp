#pragma once

// The sluice C++ SDK: a header-only layer over the C ABI (sluice/filter.h) for filter authors.
//
//   class MyConfig {
//   public:
//     // MAIN thread. Parse and validate; report errors through ctx and return nullptr.
//     static std::unique_ptr<MyConfig> create(sluice::sdk::ConfigContext& ctx);
//     // WORKER thread. One filter object per stream (nullptr skips the filter for it).
//     std::unique_ptr<MyFilter> newFilter(sluice::sdk::Stream stream) const;
//     // Optional: void onLogReopen();  (MAIN thread, SIGUSR1)
//     // Optional (C ABI 1.3): bool onStart();  (MAIN thread) create() only checks and must have
//     //   no side effect; onStart() runs once the whole config load passed its checks and is
//     //   about to go live (never for `sluice validate` nor a load that failed): open files,
//     //   start threads there. Return false or throw (the message is logged) to fail the load.
//     // Optional per-worker state (WORKER thread, once per worker); newFilter then also gets it:
//     //   std::unique_ptr<MyWorker> newWorker(sluice::sdk::Worker w) const;
//     //   std::unique_ptr<MyFilter> newFilter(sluice::sdk::Stream s, MyWorker& w) const;
//   };
//   class MyFilter : public sluice::sdk::Filter {
//   public:
//     MyFilter(const MyConfig& c, sluice::sdk::Stream s) : Filter(s), config_(c) {}
//     sluice_status_t onRequestHeaders(bool end_stream) override;
//   };
//   SLUICE_SDK_MODULE("my_module", sluice::sdk::filterType<MyConfig>("my_filter"))
//
// What the SDK does for you:
//  - generates the sluice_filter_descriptor_t of each filter type and the module entry symbol
//    (sluice_module_init, or the built-in name when the filter is linked into a distro build);
//  - installs only the body and trailer hooks your filter overrides, so a filter without a
//    body hook keeps the host's zero-copy body fast path (declare your overrides public: the
//    SDK looks at them to decide);
//  - checks ABI compatibility at load time: the host's major must equal the one this header
//    was written for and its minor must be at least SLUICE_SDK_REQUIRED_ABI_MINOR (default:
//    the minor of the header you build against; define it lower before including this header
//    to run on older hosts, and test Host::provides() before using newer host functions);
//  - catches every exception before it reaches C: in a config factory it becomes a config
//    error at ""; in a stream hook or callback it is logged and the stream is answered with a
//    local 500 (or reset if the response already started) — a throwing filter fails closed;
//  - member-function callbacks for timers, posted work and HTTP calls with no allocation:
//    httpCall<&MyFilter::onAuthz>(...). They are bound to the stream: the host cancels them
//    when the stream is destroyed, so they never run on a deleted filter. TimerHandle and
//    CallHandle (RAII) cancel one earlier;
//  - filter objects come from a per-worker pool (Filter has class-specific operator new and
//    delete), so a stream's make_unique/delete does not reach malloc in steady state;
//  - RAII ownership throughout: the config object and each filter object are owned by the SDK
//    (std::unique_ptr from your factories) and deleted in the matching destroy hook.
//
// Threading and lifetime are those of sluice/filter.h: the config object is shared read-only
// by all workers (make it immutable after create()); a filter object is single-threaded.
// std::string_view values returned by Stream point into host memory and are valid until the
// hook returns or the same header map / body is modified: copy what you keep.

#include "sluice/filter.h"
#include "sluice/sdk/config.hpp"

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

static_assert(SLUICE_ABI_VERSION_MAJOR == 1, "this SDK is written for sluice C ABI major 1");

#ifndef SLUICE_SDK_REQUIRED_ABI_MINOR
#define SLUICE_SDK_REQUIRED_ABI_MINOR SLUICE_ABI_VERSION_MINOR
#endif
static_assert(SLUICE_SDK_REQUIRED_ABI_MINOR <= SLUICE_ABI_VERSION_MINOR,
              "SLUICE_SDK_REQUIRED_ABI_MINOR is newer than the ABI header");

// The exported entry symbol. A distro build that links the filter into the binary defines it
// as sluice_builtin_<name>_init (cmake/SluiceFilter.cmake does that).
#ifndef SLUICE_MODULE_ENTRY_NAME
#define SLUICE_MODULE_ENTRY_NAME sluice_module_init
#endif

namespace sluice::sdk {

constexpr sluice_status_t kContinue = SLUICE_STATUS_CONTINUE;
constexpr sluice_status_t kStop = SLUICE_STATUS_STOP;
constexpr sluice_status_t kStopAndBuffer = SLUICE_STATUS_STOP_AND_BUFFER;

inline sluice_header_t header(std::string_view name, std::string_view value) {
  return sluice_header_t{toStr(name), toStr(value)};
}

// The host table with the size check a module needs for functions newer minors append.
struct Host {
  // True when the host table has the field ending at byte `end` (offsetof + sizeof of it), e.g.
  // provides(offsetof(sluice_host_t, fn) + sizeof(void*)).
  static bool provides(const sluice_host_t* h, size_t end) {
    return h != nullptr && h->size >= end;
  }
  // The table size of ABI 1.0: every function up to sluice_host_worker_now_ms.
  static constexpr size_t kSize1_0 =
      offsetof(sluice_host_t, sluice_host_worker_now_ms) + sizeof(void*);
};

// The answer to an HTTP call, valid only during the callback.
class HttpResponse {
public:
  explicit HttpResponse(const sluice_http_response_t* r) : r_(r) {}
  // False when the call failed (timeout, connect failure, reset, ...): status() is 0 then.
  bool ok() const { return r_->status != 0; }
  uint32_t status() const { return r_->status; }
  std::string_view body() const { return toView(r_->body); }
  std::string_view error() const { return toView(r_->error); }
  size_t headerCount() const { return r_->header_count; }
  const sluice_header_t& headerAt(size_t i) const { return r_->headers[i]; }
  // First value of `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const {
    for (size_t i = 0; i < r_->header_count; i++) {
      std::string_view n = toView(r_->headers[i].name);
      if (iequals(n, name)) {
        return toView(r_->headers[i].value);
      }
    }
    return std::nullopt;
  }
  const sluice_http_response_t* raw() const { return r_; }

  static bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (size_t i = 0; i < a.size(); i++) {
      char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
      char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
      if (x != y) {
        return false;
      }
    }
    return true;
  }

private:
  const sluice_http_response_t* r_;
};

// A stream handle plus the host table: every stream host function as a method. Cheap to copy.
// Call it only on the stream's worker, inside a hook or a callback for that stream.
class Stream {
public:
  Stream(const sluice_host_t* host, sluice_stream_t* stream, const std::string* filter_name)
      : host_(host), s_(stream), name_(filter_name) {}

  const sluice_host_t* host() const { return host_; }
  sluice_stream_t* raw() const { return s_; }
  // The filter instance name (for messages).
  std::string_view filterName() const { return name_ == nullptr ? "" : *name_; }

  // --- headers ---
  std::optional<std::string_view> header(sluice_header_map_t map, std::string_view name,
                                         size_t index = 0) const {
    sluice_str_t v{nullptr, 0};
    if (host_->sluice_host_header_get(s_, map, toStr(name), index, &v)) {
      return toView(v);
    }
    return std::nullopt;
  }
  std::optional<std::string_view> requestHeader(std::string_view name) const {
    return header(SLUICE_HEADERS_REQUEST, name);
  }
  std::optional<std::string_view> responseHeader(std::string_view name) const {
    return header(SLUICE_HEADERS_RESPONSE, name);
  }
  std::string_view method() const { return requestHeader(":method").value_or(""); }
  std::string_view path() const { return requestHeader(":path").value_or(""); }
  std::string_view authority() const { return requestHeader(":authority").value_or(""); }
  size_t headerCount(sluice_header_map_t map) const {
    return host_->sluice_host_header_count(s_, map);
  }
  // The i-th entry in wire order (pseudo-headers excluded).
  std::optional<std::pair<std::string_view, std::string_view>> headerAt(sluice_header_map_t map,
                                                                        size_t i) const {
    sluice_str_t n{nullptr, 0};
    sluice_str_t v{nullptr, 0};
    if (host_->sluice_host_header_at(s_, map, i, &n, &v)) {
      return std::make_pair(toView(n), toView(v));
    }
    return std::nullopt;
  }
  void setHeader(sluice_header_map_t map, std::string_view name, std::string_view value) const {
    host_->sluice_host_header_set(s_, map, toStr(name), toStr(value));
  }
  void addHeader(sluice_header_map_t map, std::string_view name, std::string_view value) const {
    host_->sluice_host_header_add(s_, map, toStr(name), toStr(value));
  }
  size_t removeHeader(sluice_header_map_t map, std::string_view name) const {
    return host_->sluice_host_header_remove(s_, map, toStr(name));
  }

  // --- body ---
  std::string_view body(sluice_direction_t dir) const {
    return toView(host_->sluice_host_body_get(s_, dir));
  }
  void replaceBody(sluice_direction_t dir, std::string_view data) const {
    host_->sluice_host_body_replace(s_, dir, toStr(data));
  }

  // --- control ---
  // Ends the stream with a local answer. The host ignores a second reply and ends a stream
  // whose response already started by closing the connection. A status outside 200..599 is a
  // bug in the filter: it is logged and answered as 500 (the host would ignore it and leave
  // the stream hanging).
  void sendLocalReply(uint32_t status, std::string_view body = {},
                      std::span<const sluice_header_t> headers = {},
                      std::string_view details = {}) const {
    if (status < 200 || status > 599) {
      log(SLUICE_LOG_ERROR,
          "local reply with invalid status " + std::to_string(status) + " answered as 500");
      status = 500;
    }
    host_->sluice_host_send_local_reply(s_, status, headers.data(), headers.size(), toStr(body),
                                        toStr(details));
  }
  void resume(sluice_direction_t dir = SLUICE_DIRECTION_REQUEST) const {
    host_->sluice_host_resume(s_, dir);
  }
  bool route(const sluice_route_t& r) const { return host_->sluice_host_route(s_, &r); }
  void setResponseFlags(uint32_t flags) const { host_->sluice_host_set_response_flags(s_, flags); }

  // --- metadata ---
  std::optional<std::string_view> metadata(std::string_view key) const {
    sluice_str_t v{nullptr, 0};
    if (host_->sluice_host_metadata_get(s_, toStr(key), &v)) {
      return toView(v);
    }
    return std::nullopt;
  }
  void setMetadata(std::string_view key, std::string_view value) const {
    host_->sluice_host_metadata_set(s_, toStr(key), toStr(value));
  }

  // --- info, worker, log ---
  sluice_stream_info_t info() const {
    sluice_stream_info_t i{};
    i.size = sizeof(i);
    host_->sluice_host_stream_info(s_, &i);
    return i;
  }
  sluice_worker_t* worker() const { return host_->sluice_host_stream_worker(s_); }
  uint32_t workerIndex() const { return host_->sluice_host_worker_index(worker()); }
  uint64_t nowMs() const { return host_->sluice_host_worker_now_ms(worker()); }
  // Logs with the request id; the message is prefixed with the filter instance name.
  void log(sluice_log_level_t level, std::string_view message) const {
    std::string m;
    if (name_ != nullptr) {
      m.reserve(name_->size() + 2 + message.size());
      m += *name_;
      m += ": ";
    }
    m += message;
    host_->sluice_host_log(nullptr, s_, level, toStr(m));
  }

private:
  const sluice_host_t* host_;
  sluice_stream_t* s_;
  const std::string* name_;
};

// A worker thread's loop, for per-worker state (Config::newWorker). Use it only on that worker.
class Worker {
public:
  Worker(const sluice_host_t* host, sluice_worker_t* worker) : host_(host), w_(worker) {}
  const sluice_host_t* host() const { return host_; }
  sluice_worker_t* raw() const { return w_; }
  uint32_t index() const { return host_->sluice_host_worker_index(w_); }
  uint64_t nowMs() const { return host_->sluice_host_worker_now_ms(w_); }
  // A worker-level timer (not bound to a stream): hold it in a TimerHandle inside the worker
  // state so that it is cancelled when the state is destroyed, as the ABI requires.
  sluice_timer_id_t startTimer(uint64_t timeout_ms, sluice_task_callback_t cb, void* user) const {
    return host_->sluice_host_timer_start(w_, nullptr, timeout_ms, cb, user);
  }
  // ABI 1.2: an available endpoint of `cluster`, picked by its load balancer, as "ip:port" or
  // "[ipv6]:port"; empty when there is none (or the host is older). Pick again per connect.
  std::string pickEndpoint(std::string_view cluster) const {
    if (!Host::provides(host_, offsetof(sluice_host_t, sluice_host_cluster_pick) + sizeof(void*)) ||
        host_->sluice_host_cluster_pick == nullptr) {
      return {};
    }
    char buf[64];
    size_t n = host_->sluice_host_cluster_pick(w_, toStr(cluster), buf, sizeof(buf));
    return std::string(buf, n);
  }

private:
  const sluice_host_t* host_;
  sluice_worker_t* w_;
};

// Owns a pending timer or HTTP call: cancels it when destroyed, reset or reassigned. Move-only.
// Stream-bound timers and calls are cancelled by the host when the stream ends anyway; a handle
// is for cancelling earlier (a deadline timer once the answer came, a call once a timer fired):
//   timeout_ = sdk::TimerHandle(stream(), startTimer<&MyFilter::onDeadline>(500));
// Cancelling an id that already fired or completed is harmless.
template <bool kIsCall> class PendingHandle {
public:
  PendingHandle() = default;
  PendingHandle(const Stream& s, uint64_t id) : host_(s.host()), worker_(s.worker()), id_(id) {}
  PendingHandle(const Worker& w, uint64_t id) : host_(w.host()), worker_(w.raw()), id_(id) {}
  PendingHandle(PendingHandle&& o) noexcept : host_(o.host_), worker_(o.worker_), id_(o.id_) {
    o.id_ = 0;
  }
  PendingHandle& operator=(PendingHandle&& o) noexcept {
    if (this != &o) {
      cancel();
      host_ = o.host_;
      worker_ = o.worker_;
      id_ = o.id_;
      o.id_ = 0;
    }
    return *this;
  }
  PendingHandle(const PendingHandle&) = delete;
  PendingHandle& operator=(const PendingHandle&) = delete;
  ~PendingHandle() { cancel(); }

  void cancel() noexcept {
    if (id_ == 0) {
      return;
    }
    if constexpr (kIsCall) {
      host_->sluice_host_http_call_cancel(worker_, id_);
    } else {
      host_->sluice_host_timer_cancel(worker_, id_);
    }
    id_ = 0;
  }
  // Forget the id without cancelling (call it from the callback: the work is done).
  void release() noexcept { id_ = 0; }
  uint64_t id() const { return id_; }
  explicit operator bool() const { return id_ != 0; }

private:
  const sluice_host_t* host_ = nullptr;
  sluice_worker_t* worker_ = nullptr;
  uint64_t id_ = 0;
};
using TimerHandle = PendingHandle<false>;
using CallHandle = PendingHandle<true>;

// Holds the process's readiness (ABI 1.2, sluice_host_ready_hold) until release() or
// destruction: take one in a worker state for start-up work that requests depend on (a first
// fetch), and release it when that work has ended, well or not. On an older host it holds
// nothing. Move-only.
class ReadyHold {
public:
  static constexpr size_t kNeeds =
      offsetof(sluice_host_t, sluice_host_ready_release) + sizeof(void*);
  ReadyHold() = default;
  ReadyHold(const Worker& w, std::string_view what) : host_(w.host()) {
    if (Host::provides(host_, kNeeds) && host_->sluice_host_ready_hold != nullptr) {
      id_ = host_->sluice_host_ready_hold(w.raw(), toStr(what));
    }
  }
  ReadyHold(ReadyHold&& o) noexcept : host_(o.host_), id_(o.id_) { o.id_ = 0; }
  ReadyHold& operator=(ReadyHold&& o) noexcept {
    if (this != &o) {
      release();
      host_ = o.host_;
      id_ = o.id_;
      o.id_ = 0;
    }
    return *this;
  }
  ReadyHold(const ReadyHold&) = delete;
  ReadyHold& operator=(const ReadyHold&) = delete;
  ~ReadyHold() { release(); }
  void release() {
    if (id_ != 0) {
      host_->sluice_host_ready_release(id_);
      id_ = 0;
    }
  }
  bool held() const { return id_ != 0; }

private:
  const sluice_host_t* host_ = nullptr;
  sluice_ready_id_t id_ = 0;
};

namespace detail {
template <class T> struct MemberOf;
template <class C, class R, class... A> struct MemberOf<R (C::*)(A...)> { using type = C; };
template <class C, class R, class... A> struct MemberOf<R (C::*)(A...) noexcept> {
  using type = C;
};
} // namespace detail

namespace detail {

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_SDK_POOL_FILTERS 0 // let ASan see every object's lifetime
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_SDK_POOL_FILTERS 0
#endif
#endif
#ifndef SLUICE_SDK_POOL_FILTERS
#define SLUICE_SDK_POOL_FILTERS 1
#endif

// Per-thread (so per-worker) free lists of filter-object memory, by size class: a stream's
// filter object is made and destroyed on its worker, so `std::make_unique<MyFilter>` in
// newFilter reuses the block the previous stream gave back instead of calling malloc. Blocks of
// up to kMaxBytes bytes are pooled, at most kMaxFree per class per thread (the rest go back to
// the heap); larger objects are plain heap allocations. A block freed on another thread joins
// that thread's lists. The memory goes back to the heap when the thread ends.
class FilterPool {
public:
  static constexpr size_t kGranule = 16;
  static constexpr size_t kClasses = 32;
  static constexpr size_t kMaxBytes = kGranule * kClasses; // 512
  static constexpr uint32_t kMaxFree = 1024;

  static void* allocate(size_t n) {
#if SLUICE_SDK_POOL_FILTERS
    if (n <= kMaxBytes) {
      return dead() ? ::operator new(classBytes(n)) : local().take(n);
    }
#endif
    return ::operator new(n);
  }
  static void deallocate(void* p, size_t n) noexcept {
#if SLUICE_SDK_POOL_FILTERS
    if (n <= kMaxBytes) {
      if (!dead()) {
        local().give(p, n);
      } else {
        ::operator delete(p, classBytes(n));
      }
      return;
    }
#endif
    ::operator delete(p, n);
  }

  FilterPool() = default;
  FilterPool(const FilterPool&) = delete;
  FilterPool& operator=(const FilterPool&) = delete;
  ~FilterPool() {
    dead() = true;
    for (size_t c = 0; c < kClasses; c++) {
      while (free_[c] != nullptr) {
        Node* n = free_[c];
        free_[c] = n->next;
        ::operator delete(static_cast<void*>(n), (c + 1) * kGranule);
      }
    }
  }

private:
  struct Node {
    Node* next;
  };
  static size_t classOf(size_t n) {
    return n == 0 ? 0 : (n - 1) / kGranule;
  }
  static size_t classBytes(size_t n) {
    return (classOf(n) + 1) * kGranule;
  }
  // Set once this thread's pool is destroyed (thread exit): later frees go to the heap.
  static bool& dead() {
    thread_local bool d = false;
    return d;
  }
  static FilterPool& local() {
    thread_local FilterPool pool;
    return pool;
  }
  void* take(size_t n) {
    size_t c = classOf(n);
    Node* node = free_[c];
    if (node == nullptr) {
      return ::operator new(classBytes(n));
    }
    free_[c] = node->next;
    count_[c]--;
    return node;
  }
  void give(void* p, size_t n) noexcept {
    size_t c = classOf(n);
    if (count_[c] >= kMaxFree) {
      ::operator delete(p, classBytes(n));
      return;
    }
    Node* node = static_cast<Node*>(p);
    node->next = free_[c];
    free_[c] = node;
    count_[c]++;
  }

  Node* free_[kClasses] = {};
  uint32_t count_[kClasses] = {};
};

} // namespace detail

// Base class of a per-stream filter object. Override the hooks you need; the defaults continue.
// Objects of Filter subclasses are allocated from a per-worker pool (detail::FilterPool), so
// `std::make_unique<MyFilter>(...)` in newFilter costs no heap allocation in steady state.
class Filter {
public:
  explicit Filter(Stream stream) : stream_(stream) {}
  virtual ~Filter() = default;
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;

  static void* operator new(size_t n) { return detail::FilterPool::allocate(n); }
  // The virtual destructor makes `delete` pass the most-derived object's size here.
  static void operator delete(void* p, size_t n) noexcept { detail::FilterPool::deallocate(p, n); }
  // Over-aligned filter types bypass the pool.
  static void* operator new(size_t n, std::align_val_t a) { return ::operator new(n, a); }
  static void operator delete(void* p, size_t n, std::align_val_t a) noexcept {
    ::operator delete(p, n, a);
  }

  virtual sluice_status_t onRequestHeaders(bool end_stream) {
    (void)end_stream;
    return kContinue;
  }
  virtual sluice_status_t onRequestBody(bool end_stream) {
    (void)end_stream;
    return kContinue;
  }
  virtual sluice_status_t onRequestTrailers() { return kContinue; }
  virtual sluice_status_t onResponseHeaders(bool end_stream) {
    (void)end_stream;
    return kContinue;
  }
  virtual sluice_status_t onResponseBody(bool end_stream) {
    (void)end_stream;
    return kContinue;
  }
  virtual sluice_status_t onResponseTrailers() { return kContinue; }
  // The stream ended (completed, reset or answered locally): log here.
  virtual void onStreamComplete() {}

  const Stream& stream() const { return stream_; }

  // An exception escaped a hook or callback: log it and end the stream with a local 500.
  // Returns STOP (the stream is over; the host ignores what follows).
  sluice_status_t fail(const char* where, const char* what) noexcept {
    try {
      stream_.log(SLUICE_LOG_ERROR, std::string("exception in ") + where + ": " + what);
    } catch (...) {
      // no memory for the message: still end the stream
    }
    stream_.sendLocalReply(500, "internal filter error\n", {}, "filter exception");
    return kStop;
  }

protected:
  // HTTP call to `cluster` whose answer is delivered to member function M of the derived
  // filter: void (MyFilter::*)(const HttpResponse&). Returns 0 if it could not start (M is
  // then not called). Cancelled by the host if the stream ends first.
  template <auto M>
  sluice_call_id_t httpCall(std::string_view cluster, std::string_view method,
                            std::string_view path, std::span<const sluice_header_t> headers = {},
                            std::string_view body = {}, uint32_t timeout_ms = 0) {
    const sluice_host_t* h = stream_.host();
    return h->sluice_host_http_call(stream_.worker(), stream_.raw(), toStr(cluster), toStr(method),
                                    toStr(path), headers.data(), headers.size(), toStr(body),
                                    timeout_ms, &httpTrampoline<M>, static_cast<Filter*>(this));
  }
  void cancelHttpCall(sluice_call_id_t id) {
    stream_.host()->sluice_host_http_call_cancel(stream_.worker(), id);
  }
  // Calls member function M (void (MyFilter::*)()) after timeout_ms on the stream's worker.
  template <auto M> sluice_timer_id_t startTimer(uint64_t timeout_ms) {
    const sluice_host_t* h = stream_.host();
    return h->sluice_host_timer_start(stream_.worker(), stream_.raw(), timeout_ms,
                                      &taskTrampoline<M>, static_cast<Filter*>(this));
  }
  void cancelTimer(sluice_timer_id_t id) {
    stream_.host()->sluice_host_timer_cancel(stream_.worker(), id);
  }
  // Calls member function M on the next loop iteration of the stream's worker.
  template <auto M> void post() {
    stream_.host()->sluice_host_post(stream_.worker(), stream_.raw(), &taskTrampoline<M>,
                                     static_cast<Filter*>(this));
  }

private:
  template <auto M> static void httpTrampoline(void* ud, const sluice_http_response_t* r) noexcept {
    using C = typename detail::MemberOf<decltype(M)>::type;
    static_assert(std::is_base_of_v<Filter, C>, "M must be a member of a Filter subclass");
    Filter* self = static_cast<Filter*>(ud);
    try {
      (static_cast<C*>(self)->*M)(HttpResponse(r));
    } catch (const std::exception& e) {
      self->fail("http call callback", e.what());
    } catch (...) {
      self->fail("http call callback", "unknown exception");
    }
  }
  template <auto M> static void taskTrampoline(void* ud) noexcept {
    using C = typename detail::MemberOf<decltype(M)>::type;
    static_assert(std::is_base_of_v<Filter, C>, "M must be a member of a Filter subclass");
    Filter* self = static_cast<Filter*>(ud);
    try {
      (static_cast<C*>(self)->*M)();
    } catch (const std::exception& e) {
      self->fail("timer/task callback", e.what());
    } catch (...) {
      self->fail("timer/task callback", "unknown exception");
    }
  }

  Stream stream_;
};

namespace detail {

// Stands in for a filter whose creation threw: the stream is answered with 500 instead of
// silently skipping the filter (an auth filter must fail closed).
class FailedFilter final : public Filter {
public:
  explicit FailedFilter(Stream s) : Filter(s) {}
  sluice_status_t onRequestHeaders(bool) override {
    return fail("on_stream_new", "the filter could not be created");
  }
};

template <class Config> struct ConfigHolder {
  const sluice_host_t* host;
  std::string name;
  std::unique_ptr<Config> config;
};

// True when F declares its own override of a hook (the type of &F::hook names F or a class
// between F and Filter, not Filter itself).
#define SLUICE_SDK_OVERRIDES(F, hook)                                                              \
  (!std::is_same_v<decltype(&F::hook), decltype(&::sluice::sdk::Filter::hook)>)

// Per-worker state is optional: a Config with `std::unique_ptr<W> newWorker(Worker) const`
// gets `newFilter(Stream, W&)` calls with the state of the stream's worker.
template <class Config>
concept HasWorkerState = requires(const Config& c, Worker w) {
  c.newWorker(w);
};

template <class Config, bool = HasWorkerState<Config>> struct WorkerTraits {
  using W = void;
  using FilterPtr = decltype(std::declval<const Config&>().newFilter(std::declval<Stream>()));
};
template <class Config> struct WorkerTraits<Config, true> {
  using W = typename decltype(std::declval<const Config&>().newWorker(
      std::declval<Worker>()))::element_type;
  using FilterPtr =
      decltype(std::declval<const Config&>().newFilter(std::declval<Stream>(), std::declval<W&>()));
};

template <class Config> class FilterTypeImpl {
public:
  static constexpr bool kHasWorker = HasWorkerState<Config>;
  using W = typename WorkerTraits<Config>::W;
  using FilterPtr = typename WorkerTraits<Config>::FilterPtr;
  using F = typename FilterPtr::element_type;
  static_assert(std::is_base_of_v<Filter, F>, "newFilter must return std::unique_ptr<T>, T a "
                                              "subclass of sluice::sdk::Filter");
  using Holder = ConfigHolder<Config>;

  static const sluice_filter_descriptor_t* descriptor(const char* type) {
    static const sluice_filter_descriptor_t d = make(type);
    return &d;
  }

private:
  static sluice_filter_descriptor_t make(const char* type) {
    sluice_filter_descriptor_t d{};
    d.size = sizeof(d);
    d.type = type;
    d.sluice_on_config_new = &configNew;
    d.sluice_on_config_destroy = &configDestroy;
    d.sluice_on_stream_new = &streamNew;
    d.sluice_on_stream_destroy = &streamDestroy;
    if constexpr (kHasWorker) {
      d.sluice_on_worker_new = &workerNew;
      d.sluice_on_worker_destroy = &workerDestroy;
    }
    // Always installed: it also answers for a filter whose creation failed.
    d.sluice_on_request_headers = &requestHeaders;
    if constexpr (SLUICE_SDK_OVERRIDES(F, onRequestBody)) {
      d.sluice_on_request_body = &requestBody;
    }
    if constexpr (SLUICE_SDK_OVERRIDES(F, onRequestTrailers)) {
      d.sluice_on_request_trailers = &requestTrailers;
    }
    if constexpr (SLUICE_SDK_OVERRIDES(F, onResponseHeaders)) {
      d.sluice_on_response_headers = &responseHeaders;
    }
    if constexpr (SLUICE_SDK_OVERRIDES(F, onResponseBody)) {
      d.sluice_on_response_body = &responseBody;
    }
    if constexpr (SLUICE_SDK_OVERRIDES(F, onResponseTrailers)) {
      d.sluice_on_response_trailers = &responseTrailers;
    }
    if constexpr (SLUICE_SDK_OVERRIDES(F, onStreamComplete)) {
      d.sluice_on_stream_complete = &streamComplete;
    }
    if constexpr (requires(Config & c) { c.onLogReopen(); }) {
      d.sluice_on_log_reopen = &logReopen;
    }
    if constexpr (requires(Config & c) {
                    { c.onStart() } -> std::convertible_to<bool>;
                  }) {
      // An older host would never call it: the side effects would silently not happen.
      static_assert(SLUICE_SDK_REQUIRED_ABI_MINOR >= 3,
                    "Config::onStart needs C ABI 1.3 (SLUICE_SDK_REQUIRED_ABI_MINOR >= 3)");
      d.sluice_on_config_start = &configStart;
    }
    return d;
  }

  static void* configNew(const sluice_host_t* host, sluice_config_ctx_t* cfg,
                         sluice_str_t json) noexcept {
    ConfigContext ctx(host, cfg, toView(json));
    try {
      std::unique_ptr<Config> c = Config::create(ctx);
      if (c == nullptr || ctx.errorCount() > 0) {
        if (ctx.errorCount() == 0) {
          ctx.error("", "the filter refused its config");
        }
        return nullptr;
      }
      return new Holder{host, std::string(ctx.name()), std::move(c)};
    } catch (const std::exception& e) {
      ctx.error("", std::string("config failed: ") + e.what());
    } catch (...) {
      ctx.error("", "config failed: unknown exception");
    }
    return nullptr;
  }
  static void configDestroy(void* config) noexcept { delete static_cast<Holder*>(config); }

  static bool configStart(void* config) noexcept {
    Holder* h = static_cast<Holder*>(config);
    try {
      if (h->config->onStart()) {
        return true;
      }
      logError(h, "on_config_start: ", "the filter refused to start");
    } catch (const std::exception& e) {
      logError(h, "exception in on_config_start: ", e.what());
    } catch (...) {
      logError(h, "exception in on_config_start: ", "unknown exception");
    }
    return false;
  }

  static void logReopen(void* config) noexcept {
    Holder* h = static_cast<Holder*>(config);
    try {
      h->config->onLogReopen();
    } catch (const std::exception& e) {
      logError(h, "exception in on_log_reopen: ", e.what());
    } catch (...) {
      logError(h, "exception in on_log_reopen: ", "unknown exception");
    }
  }
  static void logError(Holder* h, const char* what, const char* detail) noexcept {
    try {
      std::string m = h->name + ": " + what + detail;
      h->host->sluice_host_log(nullptr, nullptr, SLUICE_LOG_ERROR, toStr(m));
    } catch (...) {
      // out of memory while logging: nothing more to do
    }
  }

  static void* workerNew(void* config, sluice_worker_t* w) noexcept {
    Holder* h = static_cast<Holder*>(config);
    try {
      return h->config->newWorker(Worker(h->host, w)).release();
    } catch (const std::exception& e) {
      logError(h, "exception in on_worker_new (streams on this worker get 500): ", e.what());
    } catch (...) {
      logError(h, "exception in on_worker_new (streams on this worker get 500): ", "unknown");
    }
    return nullptr;
  }
  static void workerDestroy(void*, void* state) noexcept {
    if constexpr (kHasWorker) {
      delete static_cast<W*>(state);
    }
  }

  static void* streamNew(void* config, void* worker_state, sluice_stream_t* s) noexcept {
    Holder* h = static_cast<Holder*>(config);
    Stream stream(h->host, s, &h->name);
    try {
      if constexpr (kHasWorker) {
        if (worker_state != nullptr) {
          return static_cast<Filter*>(
              h->config->newFilter(stream, *static_cast<W*>(worker_state)).release());
        }
      } else {
        (void)worker_state;
        return static_cast<Filter*>(h->config->newFilter(stream).release());
      }
    } catch (const std::exception& e) {
      logError(h, "exception in on_stream_new: ", e.what());
    } catch (...) {
      logError(h, "exception in on_stream_new: ", "unknown exception");
    }
    try {
      return static_cast<Filter*>(new FailedFilter(stream));
    } catch (...) {
      return nullptr; // no memory at all: the host skips the filter for this stream
    }
  }
  static void streamDestroy(void* f) noexcept { delete static_cast<Filter*>(f); }

  template <class Fn> static sluice_status_t guard(void* f, const char* where, Fn&& fn) noexcept {
    Filter* self = static_cast<Filter*>(f);
    try {
      return fn(self);
    } catch (const std::exception& e) {
      return self->fail(where, e.what());
    } catch (...) {
      return self->fail(where, "unknown exception");
    }
  }
  static sluice_status_t requestHeaders(void* f, sluice_stream_t*, bool end) noexcept {
    return guard(f, "on_request_headers", [&](Filter* x) { return x->onRequestHeaders(end); });
  }
  static sluice_status_t requestBody(void* f, sluice_stream_t*, bool end) noexcept {
    return guard(f, "on_request_body", [&](Filter* x) { return x->onRequestBody(end); });
  }
  static sluice_status_t requestTrailers(void* f, sluice_stream_t*) noexcept {
    return guard(f, "on_request_trailers", [&](Filter* x) { return x->onRequestTrailers(); });
  }
  static sluice_status_t responseHeaders(void* f, sluice_stream_t*, bool end) noexcept {
    return guard(f, "on_response_headers", [&](Filter* x) { return x->onResponseHeaders(end); });
  }
  static sluice_status_t responseBody(void* f, sluice_stream_t*, bool end) noexcept {
    return guard(f, "on_response_body", [&](Filter* x) { return x->onResponseBody(end); });
  }
  static sluice_status_t responseTrailers(void* f, sluice_stream_t*) noexcept {
    return guard(f, "on_response_trailers", [&](Filter* x) { return x->onResponseTrailers(); });
  }
  static void streamComplete(void* f, sluice_stream_t*) noexcept {
    Filter* self = static_cast<Filter*>(f);
    try {
      self->onStreamComplete();
    } catch (const std::exception& e) {
      try {
        self->stream().log(SLUICE_LOG_ERROR,
                           std::string("exception in on_stream_complete: ") + e.what());
      } catch (...) {
      }
    } catch (...) {
      try {
        self->stream().log(SLUICE_LOG_ERROR, "exception in on_stream_complete");
      } catch (...) {
      }
    }
  }
};

#undef SLUICE_SDK_OVERRIDES

constexpr bool minorAtLeast(uint32_t have, uint32_t need) {
  return have >= need;
}

// Fills `module` and checks that the host can run this module. Logs why and returns null when
// it cannot (the host then refuses the module with its own message).
inline const sluice_module_t* initModule(const sluice_host_t* host, uint32_t host_major,
                                         uint32_t host_minor, const char* name,
                                         const sluice_filter_descriptor_t* const* filters,
                                         size_t count, sluice_module_t& module) noexcept {
  if (host == nullptr || host->size < offsetof(sluice_host_t, sluice_host_log) + sizeof(void*)) {
    return nullptr;
  }
  char msg[256];
  const char* problem = nullptr;
  if (host_major != SLUICE_ABI_VERSION_MAJOR) {
    problem = "major versions differ";
  } else if (!minorAtLeast(host_minor, SLUICE_SDK_REQUIRED_ABI_MINOR)) {
    problem = "the host is older than the ABI minor this module requires";
  } else if (host->size < Host::kSize1_0) {
    problem = "the host function table is too small";
  }
  if (problem != nullptr) {
    int n = std::snprintf(msg, sizeof msg, "module %s: built for C ABI %d.%d, host has %u.%u: %s",
                          name, SLUICE_ABI_VERSION_MAJOR, SLUICE_SDK_REQUIRED_ABI_MINOR, host_major,
                          host_minor, problem);
    host->sluice_host_log(nullptr, nullptr, SLUICE_LOG_ERROR,
                          sluice_str_t{msg, n > 0 ? static_cast<size_t>(n) : 0});
    return nullptr;
  }
  module.size = sizeof(sluice_module_t);
  module.abi_major = SLUICE_ABI_VERSION_MAJOR;
  module.abi_minor = SLUICE_SDK_REQUIRED_ABI_MINOR;
  module.name = name;
  module.filters = filters;
  module.filter_count = count;
  return &module;
}

} // namespace detail

// The descriptor of filter type `type` implemented by Config (see the top of this file).
// `type` must have static storage (a string literal).
template <class Config> const sluice_filter_descriptor_t* filterType(const char* type) {
  return detail::FilterTypeImpl<Config>::descriptor(type);
}

} // namespace sluice::sdk

// Defines the module entry symbol returning the given descriptors (filterType<...>(...)).
// Use it once per shared object (or once per filter directory in a distro build).
#define SLUICE_SDK_MODULE(module_name, ...)                                                        \
  extern "C" SLUICE_EXPORT const sluice_module_t* SLUICE_MODULE_ENTRY_NAME(                        \
      const sluice_host_t* host, uint32_t host_abi_major, uint32_t host_abi_minor) {               \
    static const sluice_filter_descriptor_t* const kSluiceDescriptors[] = {__VA_ARGS__};           \
    static sluice_module_t kSluiceModule{};                                                        \
    return ::sluice::sdk::detail::initModule(                                                      \
        host, host_abi_major, host_abi_minor, module_name, kSluiceDescriptors,                     \
        sizeof(kSluiceDescriptors) / sizeof(kSluiceDescriptors[0]), kSluiceModule);                \
  }
