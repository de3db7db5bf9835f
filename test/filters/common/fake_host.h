#pragma once

// An in-memory sluice_host_t for driving a filter through its C ABI in unit tests: streams with
// stream info, header maps and metadata; workers with a manual timer list that the test fires;
// config contexts that collect errors; metrics and log lines recorded for inspection.
// Handles are plain pointers to the fake objects below.

#include "core/filter/config_view.h"
#include "sluice/filter.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <poll.h>

namespace sluice::testing {

class FakeHost;

struct FakeWorker {
  struct Timer {
    uint64_t timeout_ms;
    sluice_task_callback_t cb;
    void* user_data;
    uint64_t due_ms = 0; // now_ms when armed + timeout_ms
  };
  struct Io {
    int fd;
    uint32_t events;
    sluice_io_callback_t cb;
    void* user_data;
  };

  uint32_t index = 0;
  uint64_t now_ms = 0;
  std::map<sluice_timer_id_t, Timer> timers;
  std::map<sluice_io_id_t, Io> ios; // open file-descriptor watches
  sluice_io_id_t next_io = 0;
  std::vector<std::pair<sluice_task_callback_t, void*>> posted;

  sluice_worker_t* handle() { return reinterpret_cast<sluice_worker_t*>(this); }
  static FakeWorker* from(sluice_worker_t* w) { return reinterpret_cast<FakeWorker*>(w); }

  // Fires every timer armed before this call (timers they arm fire on the next call). Returns
  // how many fired.
  size_t fireTimers() {
    std::vector<sluice_timer_id_t> due;
    for (const auto& [id, t] : timers) {
      due.push_back(id);
    }
    size_t fired = 0;
    for (sluice_timer_id_t id : due) {
      auto it = timers.find(id);
      if (it == timers.end()) {
        continue;
      }
      Timer t = it->second;
      timers.erase(it);
      t.cb(t.user_data);
      fired++;
    }
    return fired;
  }

  // Fires the timers due at now_ms (armed before this call). Returns how many fired.
  size_t fireDueTimers() {
    std::vector<sluice_timer_id_t> due;
    for (const auto& [id, t] : timers) {
      if (t.due_ms <= now_ms) {
        due.push_back(id);
      }
    }
    size_t fired = 0;
    for (sluice_timer_id_t id : due) {
      auto it = timers.find(id);
      if (it == timers.end()) {
        continue;
      }
      Timer t = it->second;
      timers.erase(it);
      t.cb(t.user_data);
      fired++;
    }
    return fired;
  }

  // One real poll(2) over the watched fds (up to timeout_ms), then the callbacks of the ready
  // ones, as a worker loop would. Returns how many callbacks ran.
  size_t pollIo(int timeout_ms) {
    std::vector<pollfd> fds;
    std::vector<sluice_io_id_t> ids;
    for (const auto& [id, io] : ios) {
      if (io.events == 0) {
        continue;
      }
      short ev = 0;
      ev |= (io.events & SLUICE_IO_READABLE) != 0 ? POLLIN : 0;
      ev |= (io.events & SLUICE_IO_WRITABLE) != 0 ? POLLOUT : 0;
      fds.push_back(pollfd{io.fd, ev, 0});
      ids.push_back(id);
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) {
      return 0;
    }
    size_t ran = 0;
    for (size_t i = 0; i < fds.size(); i++) {
      auto it = ios.find(ids[i]);
      if (fds[i].revents == 0 || it == ios.end()) {
        continue; // closed by an earlier callback
      }
      uint32_t e = 0;
      if ((fds[i].revents & (POLLERR | POLLNVAL)) != 0) {
        e = SLUICE_IO_READABLE | SLUICE_IO_WRITABLE | SLUICE_IO_ERROR;
      } else {
        e |= (fds[i].revents & (POLLIN | POLLHUP)) != 0 ? SLUICE_IO_READABLE : 0;
        e |= (fds[i].revents & POLLOUT) != 0 ? SLUICE_IO_WRITABLE : 0;
      }
      e &= it->second.events | SLUICE_IO_ERROR;
      if (e == 0) {
        continue;
      }
      Io io = it->second;
      io.cb(io.user_data, e);
      ran++;
    }
    return ran;
  }

  // Runs every task posted before this call (tasks they post run on the next call). Returns how
  // many ran.
  size_t runPosted() {
    std::vector<std::pair<sluice_task_callback_t, void*>> due;
    due.swap(posted);
    for (const auto& [cb, user_data] : due) {
      cb(user_data);
    }
    return due.size();
  }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct FakeStream {
  FakeWorker* worker = nullptr;
  std::string client_address = "127.0.0.1:50000";
  std::string client_ip = "127.0.0.1";
  std::string request_id = "req-1";
  std::string listener = "web";
  std::string protocol = "HTTP/1.1";
  std::string route_name;
  std::string upstream_cluster;
  std::string upstream_endpoint;
  bool tls = false;
  uint32_t response_flags = 0;
  uint32_t response_status = 200;
  uint64_t start_unix_us = 1764000000123456ull; // 2025-11-24T16:00:00.123456Z
  uint64_t duration_us = 1500;
  uint64_t upstream_duration_us = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // Pseudo-headers (":method", ":path", ":authority", ":status") live in the maps by name.
  HeaderList request_headers = {{":method", "GET"}, {":path", "/"}, {":authority", "example.com"}};
  HeaderList response_headers;
  HeaderList request_trailers;
  HeaderList response_trailers;
  HeaderList metadata;
  std::vector<uint32_t> local_replies;
  HeaderList local_reply_headers; // of the last local reply
  std::string local_reply_body;
  std::string local_reply_details;
  uint32_t resumed = 0; // sluice_host_resume calls

  sluice_stream_t* handle() { return reinterpret_cast<sluice_stream_t*>(this); }
  static FakeStream* from(sluice_stream_t* s) { return reinterpret_cast<FakeStream*>(s); }

  HeaderList& map(sluice_header_map_t m) {
    switch (m) {
    case SLUICE_HEADERS_RESPONSE:
      return response_headers;
    case SLUICE_TRAILERS_REQUEST:
      return request_trailers;
    case SLUICE_TRAILERS_RESPONSE:
      return response_trailers;
    case SLUICE_HEADERS_REQUEST:
      break;
    }
    return request_headers;
  }

  void setHeader(sluice_header_map_t m, std::string name, std::string value) {
    HeaderList& h = map(m);
    h.erase(
        std::remove_if(h.begin(), h.end(), [&](const auto& e) { return iequals(e.first, name); }),
        h.end());
    h.emplace_back(std::move(name), std::move(value));
  }

  static bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
      return false;
    }
    for (size_t i = 0; i < a.size(); i++) {
      char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
      char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
      if (x != y) {
        return false;
      }
    }
    return true;
  }
};

struct FakeConfigCtx {
  std::string name = "access_log";
  std::string base_dir = "/etc/sluice";
  std::vector<std::string> clusters;
  std::vector<std::pair<std::string, std::string>> errors; // {pointer, message}
  // sluice_host_config_view: the host's own implementation, freed with the context.
  std::vector<std::unique_ptr<sluice::filter::ConfigView>> views;

  sluice_config_ctx_t* handle() { return reinterpret_cast<sluice_config_ctx_t*>(this); }
  static FakeConfigCtx* from(sluice_config_ctx_t* c) { return reinterpret_cast<FakeConfigCtx*>(c); }

  bool hasError(std::string_view pointer) const {
    return std::any_of(errors.begin(), errors.end(),
                       [&](const auto& e) { return e.first == pointer; });
  }
};

struct FakeMetric {
  sluice_metric_type_t type;
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
  uint64_t observations = 0;
};

// One instance at a time: the host functions without a handle (metrics, log) reach it through
// current(). Metric and log functions are thread-safe, as the ABI requires.
class FakeHost {
public:
  FakeHost() {
    current() = this;
    table_.size = sizeof(sluice_host_t);
    table_.abi_major = SLUICE_ABI_VERSION_MAJOR;
    table_.abi_minor = SLUICE_ABI_VERSION_MINOR;
    table_.sluice_host_log = &log;
    table_.sluice_host_config_error = &configError;
    table_.sluice_host_config_cluster_exists = &configClusterExists;
    table_.sluice_host_config_name = &configName;
    table_.sluice_host_config_resolve_path = &configResolvePath;
    table_.sluice_host_config_define_metric = &defineMetric;
    table_.sluice_host_metric_add = &metricAdd;
    table_.sluice_host_metric_set = &metricSet;
    table_.sluice_host_metric_observe = &metricObserve;
    table_.sluice_host_header_get = &headerGet;
    table_.sluice_host_header_count = &headerCount;
    table_.sluice_host_header_at = &headerAt;
    table_.sluice_host_header_set = &headerSet;
    table_.sluice_host_header_add = &headerAdd;
    table_.sluice_host_header_remove = &headerRemove;
    table_.sluice_host_body_get = &bodyGet;
    table_.sluice_host_body_replace = &bodyReplace;
    table_.sluice_host_send_local_reply = &sendLocalReply;
    table_.sluice_host_resume = &resume;
    table_.sluice_host_route = &route;
    table_.sluice_host_set_response_flags = &setResponseFlags;
    table_.sluice_host_metadata_get = &metadataGet;
    table_.sluice_host_metadata_set = &metadataSet;
    table_.sluice_host_metadata_at = &metadataAt;
    table_.sluice_host_stream_info = &streamInfo;
    table_.sluice_host_stream_worker = &streamWorker;
    table_.sluice_host_timer_start = &timerStart;
    table_.sluice_host_timer_cancel = &timerCancel;
    table_.sluice_host_post = &post;
    table_.sluice_host_http_call = &httpCall;
    table_.sluice_host_http_call_cancel = &httpCallCancel;
    table_.sluice_host_worker_index = &workerIndex;
    table_.sluice_host_worker_now_ms = &workerNowMs;
    table_.sluice_host_io_watch = &ioWatch;
    table_.sluice_host_io_update = &ioUpdate;
    table_.sluice_host_io_close = &ioClose;
    table_.sluice_host_ready_hold = &readyHold;
    table_.sluice_host_ready_release = &readyRelease;
    table_.sluice_host_cluster_pick = &clusterPick;
    table_.sluice_host_config_view = &configView;
    sluice::filter::ConfigView::fillHostTable(table_);
  }
  ~FakeHost() {
    if (current() == this) {
      current() = nullptr;
    }
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const sluice_host_t* table() const { return &table_; }

  // The value of metric `name` (summed over label sets).
  double metric(std::string_view name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    double v = 0;
    for (const FakeMetric& m : metrics_) {
      if (m.name == name) {
        v += m.value;
      }
    }
    return v;
  }
  std::vector<FakeMetric> metrics() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return metrics_;
  }
  std::vector<std::pair<sluice_log_level_t, std::string>> logs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_;
  }

  // sluice_host_http_call: refused (returns 0) unless accept_http_calls is set; then every call
  // is recorded and completed by the test with completeHttpCall().
  struct HttpCall {
    sluice_call_id_t id;
    sluice_worker_t* worker;
    sluice_stream_t* stream;
    std::string cluster;
    std::string method;
    std::string path;
    uint32_t timeout_ms;
    sluice_http_callback_t cb;
    void* user_data;
    bool done = false; // completed or cancelled
  };
  bool accept_http_calls = false;
  std::vector<HttpCall> http_calls;
  // sluice_host_cluster_pick (ABI 1.2): the address each cluster answers (none: 0 returned).
  std::map<std::string, std::string> cluster_addresses;
  size_t cluster_picks = 0;
  // Open readiness holds (ABI 1.2): id -> what.
  std::map<sluice_ready_id_t, std::string> ready_holds;
  sluice_ready_id_t next_ready_id = 1;

  // Completes call i (status 0 with `error` for a failure). False if it already finished.
  bool completeHttpCall(size_t i, uint32_t status, const std::string& body,
                        const std::string& error = "") {
    if (i >= http_calls.size() || http_calls[i].done) {
      return false;
    }
    http_calls[i].done = true;
    sluice_http_response_t r{};
    r.size = sizeof(r);
    r.status = status;
    r.body = st(body);
    r.error = st(error);
    http_calls[i].cb(http_calls[i].user_data, &r);
    return true;
  }
  size_t pendingHttpCalls() const {
    return static_cast<size_t>(std::count_if(http_calls.begin(), http_calls.end(),
                                             [](const HttpCall& c) { return !c.done; }));
  }

  static FakeHost*& current() {
    static FakeHost* host = nullptr;
    return host;
  }

private:
  static std::string_view sv(sluice_str_t s) {
    return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
  }
  static sluice_str_t st(std::string_view v) { return sluice_str_t{v.data(), v.size()}; }

  static void log(sluice_config_ctx_t*, sluice_stream_t*, sluice_log_level_t level,
                  sluice_str_t message) {
    FakeHost* h = current();
    std::lock_guard<std::mutex> lock(h->mutex_);
    h->logs_.emplace_back(level, std::string(sv(message)));
  }

  static void configError(sluice_config_ctx_t* cfg, sluice_str_t pointer, sluice_str_t message) {
    FakeConfigCtx::from(cfg)->errors.emplace_back(std::string(sv(pointer)),
                                                  std::string(sv(message)));
  }
  static sluice_config_view_t* configView(sluice_config_ctx_t* cfg, sluice_str_t json,
                                          sluice_config_problem_t* problem) {
    if (cfg == nullptr) {
      return nullptr;
    }
    std::string error;
    auto view = sluice::filter::ConfigView::parse(sv(json), error);
    if (!view) {
      view = sluice::filter::ConfigView::parse("null", error);
      view->setProblem(problem, "", "invalid JSON: " + error);
      FakeConfigCtx::from(cfg)->views.push_back(std::move(view));
      return nullptr;
    }
    FakeConfigCtx::from(cfg)->views.push_back(std::move(view));
    return FakeConfigCtx::from(cfg)->views.back()->handle();
  }
  static bool configClusterExists(sluice_config_ctx_t* cfg, sluice_str_t name) {
    const auto& c = FakeConfigCtx::from(cfg)->clusters;
    return std::find(c.begin(), c.end(), sv(name)) != c.end();
  }
  static sluice_str_t configName(sluice_config_ctx_t* cfg) {
    return st(FakeConfigCtx::from(cfg)->name);
  }
  static size_t configResolvePath(sluice_config_ctx_t* cfg, sluice_str_t path, char* out,
                                  size_t out_len) {
    std::string p(sv(path));
    if (!p.empty() && p[0] != '/') {
      p = FakeConfigCtx::from(cfg)->base_dir + "/" + p;
    }
    if (p.size() + 1 > out_len) {
      return 0;
    }
    std::memcpy(out, p.c_str(), p.size() + 1);
    return p.size();
  }
  static sluice_metric_id_t defineMetric(sluice_config_ctx_t*, sluice_metric_type_t type,
                                         sluice_str_t name, sluice_str_t help,
                                         const sluice_header_t* labels, size_t label_count,
                                         const double*, size_t) {
    (void)help;
    FakeHost* h = current();
    FakeMetric m{type, std::string(sv(name)), {}, 0, 0};
    for (size_t i = 0; i < label_count; i++) {
      m.labels.emplace_back(std::string(sv(labels[i].name)), std::string(sv(labels[i].value)));
    }
    std::lock_guard<std::mutex> lock(h->mutex_);
    for (size_t i = 0; i < h->metrics_.size(); i++) {
      if (h->metrics_[i].name == m.name && h->metrics_[i].labels == m.labels) {
        return static_cast<sluice_metric_id_t>(i);
      }
    }
    h->metrics_.push_back(std::move(m));
    return static_cast<sluice_metric_id_t>(h->metrics_.size() - 1);
  }
  static void metricAdd(sluice_metric_id_t id, double delta) {
    FakeHost* h = current();
    std::lock_guard<std::mutex> lock(h->mutex_);
    if (id < h->metrics_.size()) {
      h->metrics_[id].value += delta;
    }
  }
  static void metricSet(sluice_metric_id_t id, double value) {
    FakeHost* h = current();
    std::lock_guard<std::mutex> lock(h->mutex_);
    if (id < h->metrics_.size()) {
      h->metrics_[id].value = value;
    }
  }
  static void metricObserve(sluice_metric_id_t id, double value) {
    FakeHost* h = current();
    std::lock_guard<std::mutex> lock(h->mutex_);
    if (id < h->metrics_.size()) {
      h->metrics_[id].value += value;
      h->metrics_[id].observations++;
    }
  }

  static bool headerGet(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
                        size_t index, sluice_str_t* value) {
    for (const auto& [n, v] : FakeStream::from(s)->map(map)) {
      if (FakeStream::iequals(n, sv(name)) && index-- == 0) {
        *value = st(v);
        return true;
      }
    }
    return false;
  }
  static size_t headerCount(sluice_stream_t* s, sluice_header_map_t map) {
    const auto& h = FakeStream::from(s)->map(map);
    return static_cast<size_t>(std::count_if(
        h.begin(), h.end(), [](const auto& e) { return e.first.empty() || e.first[0] != ':'; }));
  }
  static bool headerAt(sluice_stream_t* s, sluice_header_map_t map, size_t i, sluice_str_t* name,
                       sluice_str_t* value) {
    for (const auto& [n, v] : FakeStream::from(s)->map(map)) {
      if (!n.empty() && n[0] == ':') {
        continue;
      }
      if (i-- == 0) {
        *name = st(n);
        *value = st(v);
        return true;
      }
    }
    return false;
  }
  static void headerSet(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
                        sluice_str_t value) {
    FakeStream::from(s)->setHeader(map, std::string(sv(name)), std::string(sv(value)));
  }
  static void headerAdd(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name,
                        sluice_str_t value) {
    FakeStream::from(s)->map(map).emplace_back(std::string(sv(name)), std::string(sv(value)));
  }
  static size_t headerRemove(sluice_stream_t* s, sluice_header_map_t map, sluice_str_t name) {
    auto& h = FakeStream::from(s)->map(map);
    const size_t before = h.size();
    h.erase(std::remove_if(h.begin(), h.end(),
                           [&](const auto& e) { return FakeStream::iequals(e.first, sv(name)); }),
            h.end());
    return before - h.size();
  }

  static sluice_str_t bodyGet(sluice_stream_t*, sluice_direction_t) { return {nullptr, 0}; }
  static void bodyReplace(sluice_stream_t*, sluice_direction_t, sluice_str_t) {}
  static void sendLocalReply(sluice_stream_t* s, uint32_t status, const sluice_header_t* headers,
                             size_t header_count, sluice_str_t body, sluice_str_t details) {
    FakeStream::from(s)->local_replies.push_back(status);
    FakeStream::from(s)->local_reply_headers.clear();
    for (size_t i = 0; i < header_count; i++) {
      FakeStream::from(s)->local_reply_headers.emplace_back(std::string(sv(headers[i].name)),
                                                            std::string(sv(headers[i].value)));
    }
    FakeStream::from(s)->local_reply_body = std::string(sv(body));
    FakeStream::from(s)->local_reply_details = std::string(sv(details));
    FakeStream::from(s)->response_status = status;
    FakeStream::from(s)->response_flags |= SLUICE_FLAG_LOCAL_REPLY;
  }
  static void resume(sluice_stream_t* s, sluice_direction_t) { FakeStream::from(s)->resumed++; }
  static bool route(sluice_stream_t* s, const sluice_route_t* r) {
    FakeStream::from(s)->upstream_cluster = std::string(sv(r->cluster));
    return true;
  }
  static void setResponseFlags(sluice_stream_t* s, uint32_t flags) {
    FakeStream::from(s)->response_flags |= flags;
  }

  static bool metadataGet(sluice_stream_t* s, sluice_str_t key, sluice_str_t* value) {
    for (const auto& [k, v] : FakeStream::from(s)->metadata) {
      if (k == sv(key)) {
        *value = st(v);
        return true;
      }
    }
    return false;
  }
  static void metadataSet(sluice_stream_t* s, sluice_str_t key, sluice_str_t value) {
    for (auto& [k, v] : FakeStream::from(s)->metadata) {
      if (k == sv(key)) {
        v = std::string(sv(value));
        return;
      }
    }
    FakeStream::from(s)->metadata.emplace_back(std::string(sv(key)), std::string(sv(value)));
  }
  static bool metadataAt(sluice_stream_t* s, size_t i, sluice_str_t* key, sluice_str_t* value) {
    const auto& md = FakeStream::from(s)->metadata;
    if (i >= md.size()) {
      return false;
    }
    *key = st(md[i].first);
    *value = st(md[i].second);
    return true;
  }

  static void streamInfo(sluice_stream_t* s, sluice_stream_info_t* info) {
    const FakeStream* f = FakeStream::from(s);
    sluice_stream_info_t full{};
    full.size = info->size;
    full.client_address = st(f->client_address);
    full.client_ip = st(f->client_ip);
    full.request_id = st(f->request_id);
    full.listener = st(f->listener);
    full.protocol = st(f->protocol);
    full.route_name = st(f->route_name);
    full.upstream_cluster = st(f->upstream_cluster);
    full.upstream_endpoint = st(f->upstream_endpoint);
    full.tls = f->tls;
    full.response_flags = f->response_flags;
    full.response_status = f->response_status;
    full.start_unix_us = f->start_unix_us;
    full.duration_us = f->duration_us;
    full.upstream_duration_us = f->upstream_duration_us;
    full.bytes_in = f->bytes_in;
    full.bytes_out = f->bytes_out;
    std::memcpy(info, &full, std::min<size_t>(info->size, sizeof(full)));
  }
  static sluice_worker_t* streamWorker(sluice_stream_t* s) {
    return FakeStream::from(s)->worker->handle();
  }

  static sluice_timer_id_t timerStart(sluice_worker_t* w, sluice_stream_t*, uint64_t timeout_ms,
                                      sluice_task_callback_t cb, void* user_data) {
    FakeHost* h = current();
    const sluice_timer_id_t id = ++h->next_timer_;
    FakeWorker* fw = FakeWorker::from(w);
    fw->timers[id] = FakeWorker::Timer{timeout_ms, cb, user_data, fw->now_ms + timeout_ms};
    return id;
  }
  static void timerCancel(sluice_worker_t* w, sluice_timer_id_t id) {
    FakeWorker::from(w)->timers.erase(id);
  }
  static void post(sluice_worker_t* w, sluice_stream_t*, sluice_task_callback_t cb,
                   void* user_data) {
    FakeWorker::from(w)->posted.emplace_back(cb, user_data);
  }
  static sluice_call_id_t httpCall(sluice_worker_t* w, sluice_stream_t* s, sluice_str_t cluster,
                                   sluice_str_t method, sluice_str_t path, const sluice_header_t*,
                                   size_t, sluice_str_t, uint32_t timeout_ms,
                                   sluice_http_callback_t cb, void* user_data) {
    FakeHost* h = current();
    if (!h->accept_http_calls) {
      return 0; // no clusters in this fake: the call cannot start
    }
    const sluice_call_id_t id = h->http_calls.size() + 1;
    h->http_calls.push_back(HttpCall{id, w, s, std::string(sv(cluster)), std::string(sv(method)),
                                     std::string(sv(path)), timeout_ms, cb, user_data, false});
    return id;
  }
  static void httpCallCancel(sluice_worker_t*, sluice_call_id_t id) {
    FakeHost* h = current();
    if (id >= 1 && id <= h->http_calls.size()) {
      h->http_calls[id - 1].done = true;
    }
  }
  static uint32_t workerIndex(sluice_worker_t* w) { return FakeWorker::from(w)->index; }
  static uint64_t workerNowMs(sluice_worker_t* w) { return FakeWorker::from(w)->now_ms; }
  static sluice_io_id_t ioWatch(sluice_worker_t* w, int fd, uint32_t events,
                                sluice_io_callback_t cb, void* user_data) {
    FakeWorker* fw = FakeWorker::from(w);
    if (fd < 0 || cb == nullptr) {
      return 0;
    }
    for (const auto& [id, io] : fw->ios) {
      if (io.fd == fd) {
        return 0; // already watched, as on a real loop
      }
    }
    const sluice_io_id_t id = ++fw->next_io;
    fw->ios[id] = FakeWorker::Io{fd, events, cb, user_data};
    return id;
  }
  static void ioUpdate(sluice_worker_t* w, sluice_io_id_t id, uint32_t events) {
    auto& ios = FakeWorker::from(w)->ios;
    if (auto it = ios.find(id); it != ios.end()) {
      it->second.events = events;
    }
  }
  static void ioClose(sluice_worker_t* w, sluice_io_id_t id) { FakeWorker::from(w)->ios.erase(id); }
  static sluice_ready_id_t readyHold(sluice_worker_t*, sluice_str_t what) {
    FakeHost* h = current();
    sluice_ready_id_t id = h->next_ready_id++;
    h->ready_holds[id] = std::string(what.ptr, what.len);
    return id;
  }
  static void readyRelease(sluice_ready_id_t id) { current()->ready_holds.erase(id); }
  static size_t clusterPick(sluice_worker_t*, sluice_str_t cluster, char* out, size_t len) {
    FakeHost* h = current();
    h->cluster_picks++;
    auto it = h->cluster_addresses.find(std::string(cluster.ptr, cluster.len));
    if (it == h->cluster_addresses.end() || it->second.size() + 1 > len) {
      return 0;
    }
    std::memcpy(out, it->second.c_str(), it->second.size() + 1);
    return it->second.size();
  }

  sluice_host_t table_{};
  mutable std::mutex mutex_;
  std::vector<FakeMetric> metrics_;
  std::vector<std::pair<sluice_log_level_t, std::string>> logs_;
  std::atomic<sluice_timer_id_t> next_timer_{0};
};

} // namespace sluice::testing
