#include "filters/access_log/access_log_filter.h"

#include "filters/common/host_check.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

namespace sluice::filters::access_log {

namespace {

std::string_view view(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}
sluice_str_t str(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}

constexpr size_t kMaxResolvedPath = 4096;
constexpr uint64_t kMinPendingBytes = 8u << 20;
constexpr size_t kLineSlack = 4096;      // room for the line that crosses buffer_bytes
constexpr size_t kMaxReserve = 1u << 20; // buffers grow past this only when they must

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void reportErrors(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                  const std::vector<ConfigError>& errors) {
  for (const ConfigError& e : errors) {
    host->sluice_host_config_error(ctx, str(e.pointer), str(e.message));
  }
}

} // namespace

// --- FilterConfig ---------------------------------------------------------------------------

FilterConfig::FilterConfig(const sluice_host_t* host, Config config, std::string name)
    : host_(host), config_(std::move(config)), name_(std::move(name)) {}

FilterConfig::~FilterConfig() = default;

std::unique_ptr<FilterConfig>
FilterConfig::create(const sluice_host_t* host, sluice_config_ctx_t* ctx, std::string_view json) {
  std::vector<ConfigError> errors;
  const PathResolver resolve = [&](std::string_view path) -> std::optional<std::string> {
    char out[kMaxResolvedPath];
    const size_t n = host->sluice_host_config_resolve_path(ctx, str(path), out, sizeof(out));
    if (n == 0 || n >= sizeof(out)) {
      return std::nullopt;
    }
    return std::string(out, n);
  };
  Config config = parseConfig(json, resolve, errors);

  // Check the file now (even when other keys are wrong, so validate reports everything): an
  // unusable path is a config error, not a surprise at the first request. Opening it (which
  // creates it) waits for sluice_on_config_start: validate and a failed load leave nothing.
  if (config.sink == Sink::File) {
    std::string error;
    if (!Writer::checkAppendable(config.path, error)) {
      errors.push_back(ConfigError{"/path", error});
    }
  }
  if (!errors.empty()) {
    reportErrors(host, ctx, errors);
    return nullptr;
  }

  std::string name(view(host->sluice_host_config_name(ctx)));
  if (name.empty()) {
    name = "access_log";
  }
  std::unique_ptr<FilterConfig> self(new FilterConfig(host, std::move(config), name));
  const sluice_header_t labels[] = {{SLUICE_STR("filter"), str(self->name_)}};
  auto counter = [&](std::string_view metric, std::string_view help) {
    return host->sluice_host_config_define_metric(ctx, SLUICE_METRIC_COUNTER, str(metric),
                                                  str(help), labels, 1, nullptr, 0);
  };
  self->lines_written_metric_ =
      counter("sluice_access_log_lines_total", "Access-log lines written.");
  self->lines_dropped_metric_ =
      counter("sluice_access_log_dropped_lines_total",
              "Access-log lines dropped because the writer fell behind or a write failed.");
  self->write_errors_metric_ = counter("sluice_access_log_write_errors_total",
                                       "Failed access-log writes, reopens and write-backs.");
  if (self->lines_written_metric_ == SLUICE_METRIC_INVALID ||
      self->lines_dropped_metric_ == SLUICE_METRIC_INVALID ||
      self->write_errors_metric_ == SLUICE_METRIC_INVALID) {
    return nullptr; // the host has already reported why the metric was refused
  }
  return self;
}

bool FilterConfig::start() {
  if (writer_) {
    return true;
  }
  const Config& c = config_;
  int fd = c.sink == Sink::Stderr ? STDERR_FILENO : STDOUT_FILENO;
  if (c.sink == Sink::File) {
    std::string error;
    fd = Writer::openForAppend(c.path, error);
    if (fd < 0) {
      log(SLUICE_LOG_ERROR, error);
      return false;
    }
  }
  const bool owns_fd = c.sink == Sink::File;
  WriterOptions options;
  options.path = c.path;
  options.is_file = c.sink == Sink::File;
  options.buffer_reserve =
      static_cast<size_t>(std::min<uint64_t>(c.buffer_bytes, kMaxReserve)) + kLineSlack;
  options.keep_capacity = static_cast<size_t>(c.buffer_bytes) * 2 + 65536;
  options.max_pending_bytes =
      static_cast<size_t>(std::max<uint64_t>(c.buffer_bytes * 16, kMinPendingBytes));
  options.observer = this;
  try {
    writer_ = std::make_unique<Writer>(std::move(options), fd);
  } catch (const std::exception& e) {
    if (owns_fd) {
      ::close(fd);
    }
    log(SLUICE_LOG_ERROR, std::string("cannot start the writer: ") + e.what());
    return false;
  }
  return true;
}

void FilterConfig::log(sluice_log_level_t level, std::string_view message) const {
  // The config context is only valid inside sluice_on_config_new, so name the filter ourselves.
  const std::string line = fmt::format("access_log \"{}\": {}", name_, message);
  host_->sluice_host_log(nullptr, nullptr, level, str(line));
}

void FilterConfig::onLinesWritten(uint64_t lines) {
  host_->sluice_host_metric_add(lines_written_metric_, static_cast<double>(lines));
}

void FilterConfig::onLinesDropped(uint64_t lines) {
  host_->sluice_host_metric_add(lines_dropped_metric_, static_cast<double>(lines));
}

void FilterConfig::onWriteError(std::string_view message) {
  host_->sluice_host_metric_add(write_errors_metric_, 1);
  log(SLUICE_LOG_ERROR, message);
}

// --- WorkerState ----------------------------------------------------------------------------

WorkerState::WorkerState(FilterConfig& config, sluice_worker_t* worker)
    : config_(config), host_(config.host()), worker_(worker) {
  const Config& c = config_.config();
  buffer_.data.reserve(static_cast<size_t>(std::min<uint64_t>(c.buffer_bytes, kMaxReserve)) +
                       kLineSlack);
  record_.metadata.reserve(16);
  record_.source = this;
  rng_state_ = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
               reinterpret_cast<uintptr_t>(this);
  splitmix64(rng_state_);
  armTimer();
}

WorkerState::~WorkerState() {
  if (timer_ != 0) {
    host_.sluice_host_timer_cancel(worker_, timer_);
    timer_ = 0;
  }
  handOver(true);
}

void WorkerState::armTimer() {
  timer_ = host_.sluice_host_timer_start(
      worker_, nullptr, config_.config().flush_ms,
      [](void* self) { static_cast<WorkerState*>(self)->onFlushTimer(); }, this);
  if (timer_ == 0) {
    config_.log(SLUICE_LOG_WARN, "cannot start the flush timer; lines are written when the "
                                 "buffer fills and when the worker stops");
  }
}

void WorkerState::onFlushTimer() {
  timer_ = 0; // fired: the id is spent
  handOver(false);
  armTimer();
}

void WorkerState::handOver(bool final) {
  config_.writer().submit(buffer_, final);
}

double WorkerState::nextUniform() {
  return static_cast<double>(splitmix64(rng_state_) >> 11) * 0x1.0p-53;
}

bool WorkerState::passes(const sluice_stream_info_t& info) {
  const When& when = config_.config().when;
  // A stream that ended without any response (status 0) failed, so it passes status_min.
  if (info.response_status != 0 && info.response_status < when.status_min) {
    return false;
  }
  if (info.duration_us < when.min_duration_ms * 1000) {
    return false;
  }
  if (when.sample < 1.0 && !(nextUniform() < when.sample)) {
    return false;
  }
  return true;
}

std::string_view WorkerState::requestHeader(std::string_view name) const {
  sluice_str_t value{nullptr, 0};
  if (!host_.sluice_host_header_get(stream_, SLUICE_HEADERS_REQUEST, str(name), 0, &value)) {
    return {};
  }
  return view(value);
}

bool WorkerState::header(HeaderMapKind map, std::string_view name, std::string_view& value) const {
  if (stream_ == nullptr) {
    return false;
  }
  sluice_str_t v{nullptr, 0};
  const sluice_header_map_t m =
      map == HeaderMapKind::Request ? SLUICE_HEADERS_REQUEST : SLUICE_HEADERS_RESPONSE;
  if (!host_.sluice_host_header_get(stream_, m, str(name), 0, &v)) {
    return false;
  }
  value = view(v);
  return true;
}

bool WorkerState::metadata(std::string_view key, std::string_view& value) const {
  if (stream_ == nullptr) {
    return false;
  }
  sluice_str_t v{nullptr, 0};
  if (!host_.sluice_host_metadata_get(stream_, str(key), &v)) {
    return false;
  }
  value = view(v);
  return true;
}

void WorkerState::onStreamComplete(sluice_stream_t* stream) {
  sluice_stream_info_t info{};
  info.size = sizeof(info);
  host_.sluice_host_stream_info(stream, &info);
  if (!passes(info)) {
    return;
  }
  const Config& c = config_.config();
  const Formatter& formatter = c.formatter;
  stream_ = stream;
  Record& r = record_;
  r.start_unix_us = info.start_unix_us;
  r.duration_us = info.duration_us;
  r.upstream_duration_us = info.upstream_duration_us;
  r.bytes_in = info.bytes_in;
  r.bytes_out = info.bytes_out;
  r.status = info.response_status;
  r.flags = info.response_flags;
  r.request_id = view(info.request_id);
  r.client_address = view(info.client_address);
  r.client_ip = view(info.client_ip);
  r.protocol = view(info.protocol);
  r.upstream_cluster = view(info.upstream_cluster);
  r.upstream_endpoint = view(info.upstream_endpoint);
  r.response_details =
      info.size >= offsetof(sluice_stream_info_t, response_details) + sizeof(info.response_details)
          ? view(info.response_details)
          : std::string_view();
  r.method = requestHeader(":method");
  r.authority = requestHeader(":authority");
  r.path = requestHeader(":path");
  r.user_agent = formatter.needsUserAgent() ? requestHeader("user-agent") : std::string_view();
  r.referer = formatter.needsReferer() ? requestHeader("referer") : std::string_view();
  r.metadata.clear();
  if (formatter.needsMetadataList()) {
    sluice_str_t key{nullptr, 0};
    sluice_str_t value{nullptr, 0};
    for (size_t i = 0; host_.sluice_host_metadata_at(stream, i, &key, &value); i++) {
      r.metadata.emplace_back(view(key), view(value));
    }
  }
  formatter.format(r, buffer_.data);
  buffer_.lines++;
  r.metadata.clear(); // the views die with the hook
  stream_ = nullptr;
  if (buffer_.data.size() >= c.buffer_bytes) {
    handOver(false);
  }
}

// --- the C ABI ------------------------------------------------------------------------------

namespace {

void* onConfigNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) noexcept {
  try {
    return FilterConfig::create(host, ctx, view(json)).release();
  } catch (const std::exception& e) {
    // Config time only (main thread): an allocation failure or a thread that cannot start.
    const std::string message = std::string("cannot create the access log: ") + e.what();
    host->sluice_host_config_error(ctx, SLUICE_STR(""), str(message));
    return nullptr;
  }
}

bool onConfigStart(void* config) noexcept {
  return static_cast<FilterConfig*>(config)->start();
}

void onConfigDestroy(void* config) noexcept {
  // Drains the writer: every line handed over by the (already destroyed) workers is written.
  delete static_cast<FilterConfig*>(config);
}

void* onWorkerNew(void* config, sluice_worker_t* worker) noexcept {
  return new WorkerState(*static_cast<FilterConfig*>(config), worker);
}

void onWorkerDestroy(void*, void* worker_state) noexcept {
  delete static_cast<WorkerState*>(worker_state);
}

// The per-stream object is the worker state itself: a stream needs nothing of its own.
void* onStreamNew(void*, void* worker_state, sluice_stream_t*) noexcept {
  return worker_state;
}

void onStreamDestroy(void*) noexcept {}

void onStreamComplete(void* filter, sluice_stream_t* stream) noexcept {
  static_cast<WorkerState*>(filter)->onStreamComplete(stream);
}

void onLogReopen(void* config) noexcept {
  if (static_cast<FilterConfig*>(config)->started()) {
    static_cast<FilterConfig*>(config)->writer().reopen();
  }
}

constexpr sluice_filter_descriptor_t makeDescriptor() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "access_log";
  d.sluice_on_config_new = onConfigNew;
  d.sluice_on_config_destroy = onConfigDestroy;
  d.sluice_on_worker_new = onWorkerNew;
  d.sluice_on_worker_destroy = onWorkerDestroy;
  d.sluice_on_stream_new = onStreamNew;
  d.sluice_on_stream_destroy = onStreamDestroy;
  d.sluice_on_stream_complete = onStreamComplete;
  d.sluice_on_log_reopen = onLogReopen;
  d.sluice_on_config_start = onConfigStart;
  return d;
}

constexpr sluice_filter_descriptor_t kDescriptor = makeDescriptor();

// Everything this filter calls lives at or before sluice_host_timer_cancel in the host table.
constexpr size_t kHostSizeNeeded = offsetof(sluice_host_t, sluice_host_timer_cancel) +
                                   sizeof(sluice_host_t::sluice_host_timer_cancel);

} // namespace

const sluice_filter_descriptor_t& descriptor() {
  return kDescriptor;
}

} // namespace sluice::filters::access_log

SLUICE_BUILTIN_MODULE(access_log, sluice::filters::access_log::kDescriptor,
                      sluice::filters::access_log::kHostSizeNeeded)
