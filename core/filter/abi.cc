// The host side of the C ABI: every sluice_host_* function. Trampolines are noexcept and
// validate what a module hands them; nothing here throws into C.

#include "core/common/logger.h"
#include "core/common/readiness.h"
#include "core/filter/config_context.h"
#include "core/filter/http_call.h"
#include "core/filter/registry.h"
#include "core/filter/stream.h"
#include "core/filter/stream_stats.h"
#include "core/stats/core_metrics.h"
#include "core/stats/registry.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

namespace sluice::filter {

namespace {

std::string_view sv(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}
sluice_str_t st(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}
ConfigContext* ctx(sluice_config_ctx_t* c) {
  return reinterpret_cast<ConfigContext*>(c);
}
Stream* strm(sluice_stream_t* s) {
  return Stream::from(s);
}
WorkerContext* wk(sluice_worker_t* w) {
  return reinterpret_cast<WorkerContext*>(w);
}

void hostLog(sluice_config_ctx_t* cfg, sluice_stream_t* s, sluice_log_level_t level,
             sluice_str_t message) noexcept {
  LogLevel l = static_cast<LogLevel>(level <= SLUICE_LOG_ERROR ? level : SLUICE_LOG_ERROR);
  if (!Logger::enabled(l)) {
    return;
  }
  std::string_view name = cfg != nullptr ? std::string_view(ctx(cfg)->name) : std::string_view();
  if (s != nullptr) {
    sluice_stream_info_t info{};
    info.size = sizeof(info);
    strm(s)->fillInfo(&info);
    Logger::write(l, "filter", name, sv(info.request_id), sv(message));
    return;
  }
  Logger::write(l, "filter", name, {}, sv(message));
}

void configError(sluice_config_ctx_t* cfg, sluice_str_t pointer, sluice_str_t message) noexcept {
  if (cfg == nullptr) {
    return;
  }
  ConfigContext* c = ctx(cfg);
  c->errors.push_back({c->pointer + std::string(sv(pointer)), std::string(sv(message))});
}

bool configClusterExists(sluice_config_ctx_t* cfg, sluice_str_t name) noexcept {
  return cfg != nullptr && ctx(cfg)->config->findCluster(sv(name)) != nullptr;
}

sluice_str_t configName(sluice_config_ctx_t* cfg) noexcept {
  if (cfg == nullptr) {
    return {nullptr, 0};
  }
  return st(ctx(cfg)->name);
}

size_t configResolvePath(sluice_config_ctx_t* cfg, sluice_str_t path, char* out,
                         size_t out_len) noexcept {
  if (cfg == nullptr || out == nullptr) {
    return 0;
  }
  std::string p(sv(path));
  if (!p.empty() && p[0] != '/') {
    p = ctx(cfg)->config->base_dir + "/" + p;
  }
  if (p.size() + 1 > out_len) {
    return 0;
  }
  std::memcpy(out, p.c_str(), p.size() + 1);
  return p.size();
}

sluice_metric_id_t configDefineMetric(sluice_config_ctx_t* cfg, sluice_metric_type_t type,
                                      sluice_str_t name, sluice_str_t help,
                                      const sluice_header_t* labels, size_t label_count,
                                      const double* bounds, size_t bound_count) noexcept {
  const std::string reserved = sluice::stats::reservedMetricReason(sv(name));
  if (!reserved.empty()) {
    // A module must not replace a core family's help text or mix its series into it.
    if (cfg != nullptr) {
      ctx(cfg)->errors.push_back(
          {ctx(cfg)->pointer,
           fmt::format("metric \"{}\" {}; name the filter's metrics sluice_<filter type>_... "
                       "or with a prefix of your own (see docs/writing-filters.md)",
                       sv(name), reserved)});
    }
    return SLUICE_METRIC_INVALID;
  }
  std::vector<std::pair<std::string, std::string>> lv;
  for (size_t i = 0; i < label_count; i++) {
    lv.emplace_back(std::string(sv(labels[i].name)), std::string(sv(labels[i].value)));
  }
  std::string error;
  uint32_t id = sluice::stats::kInvalidId;
  sluice::stats::Registry& r = sluice::stats::Registry::global();
  switch (type) {
  case SLUICE_METRIC_COUNTER:
    id = r.defineCounter(std::string(sv(name)), std::string(sv(help)), lv, &error);
    break;
  case SLUICE_METRIC_GAUGE:
    id = r.defineGauge(std::string(sv(name)), std::string(sv(help)), lv, &error);
    break;
  case SLUICE_METRIC_HISTOGRAM: {
    std::vector<double> b;
    if (bounds != nullptr) {
      b.assign(bounds, bounds + bound_count);
    }
    id = r.defineHistogram(std::string(sv(name)), std::string(sv(help)), lv, b, &error);
    break;
  }
  }
  if (id == sluice::stats::kInvalidId) {
    if (cfg != nullptr) {
      ctx(cfg)->errors.push_back(
          {ctx(cfg)->pointer, fmt::format("metric \"{}\": {}", sv(name), error)});
    }
    return SLUICE_METRIC_INVALID;
  }
  return id;
}

sluice_config_view_t* configView(sluice_config_ctx_t* cfg, sluice_str_t json,
                                 sluice_config_problem_t* problem) noexcept {
  if (cfg == nullptr) {
    if (problem != nullptr && problem->size >= sizeof(sluice_config_problem_t)) {
      problem->pointer = st("");
      problem->message = st("no config context: the config view exists only inside "
                            "sluice_on_config_new");
    }
    return nullptr;
  }
  try {
    std::string error;
    std::unique_ptr<ConfigView> view = ConfigView::parse(sv(json), error);
    if (!view) {
      // A view that exists only to carry the problem's strings.
      view = ConfigView::parse("null", error);
      view->setProblem(problem, "", "invalid JSON: " + error);
      ctx(cfg)->views.push_back(std::move(view));
      return nullptr;
    }
    ctx(cfg)->views.push_back(std::move(view));
    return ctx(cfg)->views.back()->handle();
  } catch (...) {
    return nullptr; // out of memory at config time
  }
}

void metricAdd(sluice_metric_id_t id, double delta) noexcept {
  if (id != SLUICE_METRIC_INVALID) {
    sluice::stats::Registry::global().add(id, delta);
  }
}
void metricSet(sluice_metric_id_t id, double value) noexcept {
  if (id != SLUICE_METRIC_INVALID) {
    sluice::stats::Registry::global().set(id, value);
  }
}
void metricObserve(sluice_metric_id_t id, double value) noexcept {
  if (id != SLUICE_METRIC_INVALID) {
    sluice::stats::Registry::global().observe(id, value);
  }
}

bool headerGet(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name, size_t index,
               sluice_str_t* value) noexcept {
  if (s == nullptr || value == nullptr) {
    return false;
  }
  std::string_view out;
  if (!strm(s)->getHeader(map, sv(name), index, &out)) {
    return false;
  }
  *value = st(out);
  return true;
}

size_t headerCount(sluice_stream_t* s, sluice_header_map_t map) noexcept {
  http::HeaderMap* m = s ? strm(s)->headerMap(map) : nullptr;
  return m ? m->size() : 0;
}

bool headerAt(sluice_stream_t* s, sluice_header_map_t map, size_t i, sluice_str_t* name,
              sluice_str_t* value) noexcept {
  http::HeaderMap* m = s ? strm(s)->headerMap(map) : nullptr;
  if (m == nullptr || i >= m->size()) {
    return false;
  }
  if (name != nullptr) {
    *name = st(m->at(i).name);
  }
  if (value != nullptr) {
    *value = st(m->at(i).value);
  }
  return true;
}

// A refused header_set/header_add: the author's bug, so it is logged and counted rather than
// dropped in silence (the request goes on without the change).
void refuseHeader(std::string_view name, bool append) {
  const FilterInstance* f = runningFilter();
  char shown[64]; // the name as logged: at most 64 bytes, control and non-ASCII bytes as '?'
  const size_t n = std::min(name.size(), sizeof(shown));
  for (size_t i = 0; i < n; i++) {
    const auto c = static_cast<unsigned char>(name[i]);
    shown[i] = c < ' ' || c >= 0x7f ? '?' : static_cast<char>(c);
  }
  SLUICE_LOG(Error, "filter",
             "filter \"{}\" called {} with header \"{}\" and a name or value that could forge or "
             "split a line on the wire (or a pseudo-header this map does not take); ignored",
             f != nullptr ? f->name : std::string("?"),
             append ? "sluice_host_header_add" : "sluice_host_header_set",
             std::string_view(shown, n));
  if (f != nullptr) {
    filter::stats::recordFilterError(*f);
  }
}

void headerSet(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
               sluice_str_t value) noexcept {
  if (s != nullptr && name.len > 0 && !strm(s)->setHeader(map, sv(name), sv(value), false)) {
    refuseHeader(sv(name), false);
  }
}

void headerAdd(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
               sluice_str_t value) noexcept {
  if (s != nullptr && name.len > 0 && !strm(s)->setHeader(map, sv(name), sv(value), true)) {
    refuseHeader(sv(name), true);
  }
}

size_t headerRemove(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name) noexcept {
  return s != nullptr ? strm(s)->removeHeader(map, sv(name)) : 0;
}

sluice_str_t bodyGet(sluice_stream_t* s, sluice_direction_t dir) noexcept {
  if (s == nullptr) {
    return {nullptr, 0};
  }
  return st(strm(s)->bodyBuffer(dir).view());
}

void bodyReplace(sluice_stream_t* s, sluice_direction_t dir, sluice_str_t data) noexcept {
  if (s == nullptr) {
    return;
  }
  network::Buffer& b = strm(s)->bodyBuffer(dir);
  b.clear();
  b.append(sv(data));
}

// A stream or worker function called from a thread it does not belong to (a filter finishing
// async work on a thread of its own): refused and logged (the first few times) instead of
// racing the worker. Checked where such calls happen in practice, the stream controls that end
// async work and the worker-loop functions; the per-request header, body and metadata calls are
// not checked (their cost would be paid by every request).
bool refusedOffThread(const char* fn) {
  static std::atomic<uint32_t> reported{0};
  if (reported.fetch_add(1, std::memory_order_relaxed) < 20) {
    SLUICE_LOG(Error, "filter",
               "{} was called from a thread that is not the worker's; the call is ignored (see "
               "THREADING in sluice/filter.h: hand work to the worker with sluice_host_post and a "
               "NULL stream, and call stream functions from there)",
               fn);
  }
  return true;
}
bool offStreamThread(const char* fn) {
  return !WorkerContext::onWorkerThread() && refusedOffThread(fn);
}
bool offWorkerThread(sluice_worker_t* w, const char* fn) {
  return !wk(w)->onOwnThread() && refusedOffThread(fn);
}

// A header a filter hands to a local reply goes to the wire as is: its name must be an RFC 9110
// token and its value must not carry CR, LF or NUL (which would forge header lines).
bool validReplyHeader(const sluice_header_t& h) {
  if (h.name.len == 0 || (h.name.ptr == nullptr) || (h.value.len != 0 && h.value.ptr == nullptr)) {
    return false;
  }
  for (size_t i = 0; i < h.name.len; i++) {
    const auto c = static_cast<unsigned char>(h.name.ptr[i]);
    const bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                                      std::string_view::npos);
    if (!tchar) {
      return false;
    }
  }
  for (size_t i = 0; i < h.value.len; i++) {
    const char c = h.value.ptr[i];
    if (c == '\r' || c == '\n' || c == '\0') {
      return false;
    }
  }
  return true;
}

void sendLocalReply(sluice_stream_t* s, uint32_t status, const sluice_header_t* headers,
                    size_t header_count, sluice_str_t body, sluice_str_t details) noexcept {
  if (s == nullptr || offStreamThread("sluice_host_send_local_reply")) {
    return;
  }
  Stream* stream = strm(s);
  const FilterInstance* f = runningFilter();
  if (status < 200 || status > 599) {
    // Not a final status (1xx, or not an HTTP status at all): a broken filter. Answer 500
    // rather than leave the request hanging.
    SLUICE_LOG(Error, "filter",
               "filter \"{}\" sent a local reply with status {} (a local reply needs a final "
               "status, 200..599); answering 500",
               f != nullptr ? f->name : std::string("?"), status);
    if (f != nullptr) {
      filter::stats::recordFilterError(*f);
    }
    if (stream->acceptsLocalReply()) {
      stream->setResponseDetails(fmt::format("invalid_local_reply_status_{}", status));
    }
    stream->sendLocalReply(500, "filter error\n", SLUICE_FLAG_LOCAL_REPLY);
    return;
  }
  for (size_t i = 0; i < header_count; i++) {
    if (headers == nullptr || !validReplyHeader(headers[i])) {
      SLUICE_LOG(Error, "filter",
                 "filter \"{}\" sent a local reply whose header #{} has an empty or invalid name "
                 "or a CR, LF or NUL in its value; answering 500",
                 f != nullptr ? f->name : std::string("?"), i);
      if (f != nullptr) {
        filter::stats::recordFilterError(*f);
      }
      if (stream->acceptsLocalReply()) {
        stream->setResponseDetails("invalid_local_reply_header");
      }
      stream->sendLocalReply(500, "filter error\n", SLUICE_FLAG_LOCAL_REPLY);
      return;
    }
  }
  if (stream->acceptsLocalReply() && details.len > 0 && details.ptr != nullptr) {
    // Before the reply: a stream that completes inside sendLocalReply logs it right away.
    stream->setResponseDetails(sv(details));
    if (Logger::enabled(LogLevel::Debug)) {
      sluice_stream_info_t info{};
      info.size = sizeof(info);
      stream->fillInfo(&info);
      thread_local fmt::memory_buffer text;
      text.clear();
      fmt::format_to(fmt::appender(text), "local reply {}: {}", status, sv(details));
      Logger::write(LogLevel::Debug, "filter", f != nullptr ? std::string_view(f->name) : "",
                    sv(info.request_id), std::string_view(text.data(), text.size()));
    }
  }
  stream->sendLocalReply(status, sv(body), SLUICE_FLAG_LOCAL_REPLY, headers, header_count);
}

void resume(sluice_stream_t* s, sluice_direction_t dir) noexcept {
  if (s != nullptr && !offStreamThread("sluice_host_resume")) {
    strm(s)->resume(dir);
  }
}

bool routeTo(sluice_stream_t* s, const sluice_route_t* r) noexcept {
  return s != nullptr && strm(s)->route(r);
}

void setFlags(sluice_stream_t* s, uint32_t flags) noexcept {
  if (s != nullptr) {
    strm(s)->addFlags(flags);
  }
}

bool metadataGet(sluice_stream_t* s, sluice_str_t key, sluice_str_t* value) noexcept {
  std::string_view v;
  if (s == nullptr || value == nullptr || !strm(s)->metadataGet(sv(key), &v)) {
    return false;
  }
  *value = st(v);
  return true;
}

void metadataSet(sluice_stream_t* s, sluice_str_t key, sluice_str_t value) noexcept {
  if (s != nullptr && key.len > 0) {
    strm(s)->metadataSet(sv(key), sv(value));
  }
}

bool metadataAt(sluice_stream_t* s, size_t i, sluice_str_t* key, sluice_str_t* value) noexcept {
  std::string_view k, v;
  if (s == nullptr || !strm(s)->metadataAt(i, &k, &v)) {
    return false;
  }
  if (key != nullptr) {
    *key = st(k);
  }
  if (value != nullptr) {
    *value = st(v);
  }
  return true;
}

void streamInfo(sluice_stream_t* s, sluice_stream_info_t* info) noexcept {
  if (s != nullptr && info != nullptr && info->size >= sizeof(uint32_t)) {
    strm(s)->fillInfo(info);
  }
}

sluice_worker_t* streamWorker(sluice_stream_t* s) noexcept {
  return s ? reinterpret_cast<sluice_worker_t*>(&strm(s)->worker()) : nullptr;
}

sluice_timer_id_t timerStart(sluice_worker_t* w, sluice_stream_t* s, uint64_t timeout_ms,
                             sluice_task_callback_t cb, void* user_data) noexcept {
  if (w == nullptr || cb == nullptr || offWorkerThread(w, "sluice_host_timer_start")) {
    return 0;
  }
  return wk(w)->startTimer(s ? strm(s) : nullptr, timeout_ms, cb, user_data);
}

void timerCancel(sluice_worker_t* w, sluice_timer_id_t id) noexcept {
  if (w != nullptr && !offWorkerThread(w, "sluice_host_timer_cancel")) {
    wk(w)->cancelTimer(id);
  }
}

void post(sluice_worker_t* w, sluice_stream_t* s, sluice_task_callback_t cb,
          void* user_data) noexcept {
  if (w == nullptr || cb == nullptr) {
    return;
  }
  if (s == nullptr) {
    const FilterInstance* owner = runningFilter();
    wk(w)->dispatcher().post([cb, user_data, owner] {
      RunningFilterScope scope(owner);
      cb(user_data);
    });
    return;
  }
  // With a stream: worker thread only; runs on the next loop turn unless the stream ends first
  // (a zero-delay stream timer, which stream completion cancels).
  if (offWorkerThread(w, "sluice_host_post with a stream")) {
    return;
  }
  wk(w)->startTimer(strm(s), 0, cb, user_data);
}

sluice_call_id_t httpCall(sluice_worker_t* w, sluice_stream_t* s, sluice_str_t cluster,
                          sluice_str_t method, sluice_str_t path, const sluice_header_t* headers,
                          size_t header_count, sluice_str_t body, uint32_t timeout_ms,
                          sluice_http_callback_t cb, void* user_data) noexcept {
  if (w == nullptr || cb == nullptr || offWorkerThread(w, "sluice_host_http_call")) {
    return 0;
  }
  return HttpCalls::start(*wk(w), s ? strm(s) : nullptr, sv(cluster), sv(method), sv(path), headers,
                          header_count, sv(body), timeout_ms, cb, user_data);
}

void httpCallCancel(sluice_worker_t* w, sluice_call_id_t id) noexcept {
  if (w != nullptr && !offWorkerThread(w, "sluice_host_http_call_cancel")) {
    HttpCalls::cancel(*wk(w), id);
  }
}

uint32_t workerIndex(sluice_worker_t* w) noexcept {
  return w ? wk(w)->index() : 0;
}

uint64_t workerNowMs(sluice_worker_t* w) noexcept {
  return w ? wk(w)->dispatcher().nowMs() : 0;
}

sluice_io_id_t ioWatch(sluice_worker_t* w, int fd, uint32_t events, sluice_io_callback_t cb,
                       void* user_data) noexcept {
  if (w == nullptr || offWorkerThread(w, "sluice_host_io_watch")) {
    return 0;
  }
  return wk(w)->ioWatch(fd, events, cb, user_data);
}

void ioUpdate(sluice_worker_t* w, sluice_io_id_t id, uint32_t events) noexcept {
  if (w != nullptr && !offWorkerThread(w, "sluice_host_io_update")) {
    wk(w)->ioUpdate(id, events);
  }
}

void ioClose(sluice_worker_t* w, sluice_io_id_t id) noexcept {
  if (w != nullptr && !offWorkerThread(w, "sluice_host_io_close")) {
    wk(w)->ioClose(id);
  }
}

sluice_ready_id_t readyHold(sluice_worker_t* w, sluice_str_t what) noexcept {
  std::string text(sv(what));
  if (text.empty()) {
    text = "a filter's start-up work";
  }
  if (w != nullptr) {
    text += fmt::format(" (worker {})", wk(w)->index());
  }
  return Readiness::global().hold(std::move(text));
}

void readyRelease(sluice_ready_id_t id) noexcept {
  Readiness::global().release(id);
}

size_t clusterPick(sluice_worker_t* w, sluice_str_t cluster, char* out, size_t out_len) noexcept {
  if (w == nullptr || out == nullptr) {
    return 0;
  }
  upstream::ClusterPool* pool = wk(w)->clusters().find(sv(cluster));
  if (pool == nullptr) {
    return 0;
  }
  int ep = pool->pickEndpoint();
  if (ep < 0) {
    return 0;
  }
  std::shared_ptr<const network::SockAddr> addr =
      pool->info().endpoints()[static_cast<size_t>(ep)]->sockAddr();
  if (!addr) {
    return 0;
  }
  return network::formatAddressTo(addr->get(), out, out_len); // no allocation per pick
}

const sluice_host_t kHost = {
    sizeof(sluice_host_t),
    SLUICE_ABI_VERSION_MAJOR,
    SLUICE_ABI_VERSION_MINOR,
    hostLog,
    configError,
    configClusterExists,
    configName,
    configResolvePath,
    configDefineMetric,
    metricAdd,
    metricSet,
    metricObserve,
    headerGet,
    headerCount,
    headerAt,
    headerSet,
    headerAdd,
    headerRemove,
    bodyGet,
    bodyReplace,
    sendLocalReply,
    resume,
    routeTo,
    setFlags,
    metadataGet,
    metadataSet,
    metadataAt,
    streamInfo,
    streamWorker,
    timerStart,
    timerCancel,
    post,
    httpCall,
    httpCallCancel,
    workerIndex,
    workerNowMs,
    ioWatch,
    ioUpdate,
    ioClose,
    readyHold,
    readyRelease,
    clusterPick,
    configView,
    ConfigView::cType,
    ConfigView::cString,
    ConfigView::cInt,
    ConfigView::cBool,
    ConfigView::cDouble,
    ConfigView::cLength,
    ConfigView::cMember,
    ConfigView::cCheckKeys,
};

} // namespace

const sluice_host_t* hostTable() {
  return &kHost;
}

} // namespace sluice::filter
