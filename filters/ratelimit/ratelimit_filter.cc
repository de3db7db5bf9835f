#include "filters/ratelimit/ratelimit_filter.h"

#include "filters/common/host_check.h"

#include <charconv>
#include <cstring>
#include <exception>

#include <openssl/sha.h>

namespace sluice::filters::ratelimit {

namespace {

std::string_view sv(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}
sluice_str_t st(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}

constexpr size_t kHostSizeBase = offsetof(sluice_host_t, sluice_host_worker_now_ms) +
                                 sizeof(sluice_host_t::sluice_host_worker_now_ms);
constexpr size_t kHostSizeIo =
    offsetof(sluice_host_t, sluice_host_io_close) + sizeof(sluice_host_t::sluice_host_io_close);
// Key values longer than this go to Redis as their SHA-1 (Redis keys stay small).
constexpr size_t kMaxRedisKeyValue = 128;

uint64_t ceilSeconds(uint64_t ms) {
  return (ms + 999) / 1000;
}

struct Num {
  char buf[24];
  size_t len;
  explicit Num(uint64_t v) { len = static_cast<size_t>(std::to_chars(buf, buf + 24, v).ptr - buf); }
  sluice_str_t str() const { return sluice_str_t{buf, len}; }
};

} // namespace

// --- FilterConfig ---------------------------------------------------------------------------

std::unique_ptr<FilterConfig> FilterConfig::create(const sluice_host_t* host,
                                                   sluice_config_ctx_t* ctx, sluice_str_t json) {
  common::ConfigReader reader;
  std::unique_ptr<Config> config = Config::parse(json, reader);
  if (config != nullptr && config->redis != nullptr && host->size < kHostSizeIo) {
    reader.error("/backend/redis", "this host has no file-descriptor watches (C ABI 1.1)");
  }
  if (config != nullptr && config->redis != nullptr && !config->redis->cluster.empty()) {
    const std::string& cluster = config->redis->cluster;
    if (host->size < SLUICE_HOST_SIZE_THROUGH(sluice_host_cluster_pick)) {
      reader.error("/backend/redis/cluster", "this host cannot pick cluster endpoints (C ABI 1.2)");
    } else if (!host->sluice_host_config_cluster_exists(ctx, st(cluster))) {
      reader.error("/backend/redis/cluster", "unknown cluster \"" + cluster + "\"");
    }
  }
  if (!reader.report(host, ctx) || config == nullptr) {
    return nullptr;
  }
  auto self = std::make_unique<FilterConfig>();
  self->host = host;
  self->config = std::move(config);
  self->name = std::string(sv(host->sluice_host_config_name(ctx)));
  if (self->name.empty()) {
    self->name = "ratelimit";
  }
  const sluice_header_t label[] = {{SLUICE_STR("filter"), st(self->name)}};
  auto counter = [&](std::string_view name, std::string_view help, const sluice_header_t* labels,
                     size_t n) {
    return host->sluice_host_config_define_metric(ctx, SLUICE_METRIC_COUNTER, st(name), st(help),
                                                  labels, n, nullptr, 0);
  };
  self->limited =
      counter("sluice_ratelimit_limited_total",
              "Requests answered 429 by a rate limit (failure_mode deny included).", label, 1);
  bool ok = self->limited != SLUICE_METRIC_INVALID;
  if (self->config->redis == nullptr) {
    self->store = std::make_unique<LocalStore>(self->config->max_keys);
    self->cap_hits =
        counter("sluice_ratelimit_key_cap_hits_total",
                "Times max_keys forced a live bucket out (its key restarts full).", label, 1);
    ok = ok && self->cap_hits != SLUICE_METRIC_INVALID;
  } else {
    RedisMetrics& m = self->redis_metrics;
    const char* help = "Redis checks that failed (failure_mode applied), by kind.";
    auto errors = [&](std::string_view kind) {
      const sluice_header_t labels[] = {{SLUICE_STR("filter"), st(self->name)},
                                        {SLUICE_STR("kind"), st(kind)}};
      return counter("sluice_ratelimit_redis_errors_total", help, labels, 2);
    };
    m.errors_connection = errors("connection");
    m.errors_timeout = errors("timeout");
    m.errors_reply = errors("reply");
    m.errors_overload = errors("overload");
    static const double kBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
    m.latency = host->sluice_host_config_define_metric(
        ctx, SLUICE_METRIC_HISTOGRAM, SLUICE_STR("sluice_ratelimit_redis_duration_seconds"),
        SLUICE_STR("Round-trip time of answered Redis rate-limit checks."), label, 1, kBounds,
        sizeof(kBounds) / sizeof(kBounds[0]));
    ok = ok && m.errors_connection != SLUICE_METRIC_INVALID &&
         m.errors_timeout != SLUICE_METRIC_INVALID && m.errors_reply != SLUICE_METRIC_INVALID &&
         m.errors_overload != SLUICE_METRIC_INVALID && m.latency != SLUICE_METRIC_INVALID;
  }
  if (!ok) {
    return nullptr; // the host reported why
  }
  return self;
}

// --- WorkerState ----------------------------------------------------------------------------

WorkerState::WorkerState(FilterConfig& config, sluice_worker_t* worker)
    : config_(config), host_(config.host), worker_(worker) {
  scratch_ = config_.config->matches.newScratch();
  key_.reserve(256);
  redis_key_.reserve(256);
  if (config_.config->redis != nullptr) {
    redis_ =
        std::make_unique<RedisClient>(host_, worker_, *config_.config->redis, config_.redis_metrics,
                                      "ratelimit \"" + config_.name + "\"");
  }
}

WorkerState::~WorkerState() {
  // Closes the connection and its fd watch (unless this runs inside the client's own callback:
  // then the client finishes that callback first).
  RedisClient::destroy(std::move(redis_));
  if (scratch_ != nullptr) {
    hs_free_scratch(scratch_);
  }
  for (StreamState* s : free_) {
    delete s;
  }
}

StreamState* WorkerState::newStream(sluice_stream_t* s) {
  StreamState* st;
  if (!free_.empty()) {
    st = free_.back();
    free_.pop_back();
  } else {
    st = new StreamState;
  }
  *st = StreamState{};
  st->worker = this;
  st->stream = s;
  return st;
}

void WorkerState::destroyStream(StreamState* st) {
  if (st->check != nullptr) {
    RedisClient::detach(st->check);
    st->check = nullptr;
  }
  free_.push_back(st);
}

bool WorkerState::buildKey(const Rule& rule, size_t index, sluice_stream_t* s) {
  key_.clear();
  key_.append(std::to_string(index)); // short-string optimised: no allocation
  key_.push_back(':');
  sluice_str_t v{nullptr, 0};
  switch (rule.key) {
  case Rule::KeyKind::Header:
    if (host_->sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, st(rule.key_name), 0, &v)) {
      key_.append("h:");
      key_.append(sv(v));
      return true;
    }
    break; // falls back to the client IP
  case Rule::KeyKind::Metadata:
    if (!host_->sluice_host_metadata_get(s, st(rule.key_name), &v)) {
      return false;
    }
    key_.append("m:");
    key_.append(sv(v));
    return true;
  case Rule::KeyKind::ClientIp:
    break;
  }
  sluice_stream_info_t info{};
  info.size = offsetof(sluice_stream_info_t, client_ip) + sizeof(info.client_ip);
  host_->sluice_host_stream_info(s, &info);
  key_.append("ip:");
  key_.append(sv(info.client_ip));
  return true;
}

sluice_status_t WorkerState::apply(StreamState& state, const Decision& d) {
  state.decision = d;
  state.have_decision = true;
  if (d.allowed) {
    return SLUICE_STATUS_CONTINUE;
  }
  host_->sluice_host_metric_add(config_.limited, 1);
  host_->sluice_host_set_response_flags(state.stream, SLUICE_FLAG_RATE_LIMITED);
  // Our own response hook does not run on our local reply: the headers go in here.
  const Num retry(std::max<uint64_t>(1, ceilSeconds(d.retry_ms)));
  const Num limit(state.rule->limit.burst);
  const Num remaining(d.remaining);
  const Num reset(ceilSeconds(d.reset_ms));
  sluice_header_t h[4];
  size_t n = 0;
  h[n++] = {SLUICE_STR("retry-after"), retry.str()};
  if (config_.config->response_headers) {
    h[n++] = {SLUICE_STR("ratelimit-limit"), limit.str()};
    h[n++] = {SLUICE_STR("ratelimit-remaining"), remaining.str()};
    h[n++] = {SLUICE_STR("ratelimit-reset"), reset.str()};
  }
  host_->sluice_host_send_local_reply(state.stream, 429, h, n, SLUICE_STR("rate limited\n"),
                                      SLUICE_STR("rate limited"));
  return SLUICE_STATUS_STOP;
}

sluice_status_t WorkerState::applyFailure(StreamState& state) {
  state.have_decision = false; // the bucket's state is unknown: no RateLimit-* headers
  if (!config_.config->redis->deny_on_failure) {
    return SLUICE_STATUS_CONTINUE;
  }
  host_->sluice_host_metric_add(config_.limited, 1);
  host_->sluice_host_set_response_flags(state.stream, SLUICE_FLAG_RATE_LIMITED);
  const sluice_header_t h[] = {{SLUICE_STR("retry-after"), SLUICE_STR("1")}};
  host_->sluice_host_send_local_reply(state.stream, 429, h, 1, SLUICE_STR("rate limited\n"),
                                      SLUICE_STR("rate limit backend unavailable"));
  return SLUICE_STATUS_STOP;
}

sluice_status_t WorkerState::onRequestHeaders(StreamState& state) {
  const Config& c = *config_.config;
  sluice_stream_t* s = state.stream;
  size_t index = 0;
  for (; index < c.rules.size(); index++) {
    const Rule& rule = c.rules[index];
    if (c.matches.matches(rule.match, host_, s, scratch_) && buildKey(rule, index, s)) {
      state.rule = &rule;
      break;
    }
  }
  if (state.rule == nullptr) {
    return SLUICE_STATUS_CONTINUE;
  }
  if (redis_ == nullptr) {
    Decision d = config_.store->consume(config_.store->hash(key_), state.rule->limit,
                                        host_->sluice_host_worker_now_ms(worker_));
    if (d.cap_hit) {
      host_->sluice_host_metric_add(config_.cap_hits, 1);
    }
    return apply(state, d);
  }
  const RedisSettings& rs = *c.redis;
  redis_key_.assign(rs.prefix);
  redis_key_.append(config_.name);
  redis_key_.push_back(':');
  size_t colon = key_.find(':', key_.find(':') + 1); // "<rule>:<kind>:" then the value
  std::string_view value = std::string_view(key_).substr(colon + 1);
  if (value.size() > kMaxRedisKeyValue) {
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const uint8_t*>(value.data()), value.size(), digest);
    redis_key_.append(std::string_view(key_).substr(0, colon + 1));
    redis_key_.append("sha1:");
    static const char kHex[] = "0123456789abcdef";
    for (uint8_t b : digest) {
      redis_key_.push_back(kHex[b >> 4]);
      redis_key_.push_back(kHex[b & 15]);
    }
  } else {
    redis_key_.append(key_);
  }
  state.check = redis_->check(redis_key_, state.rule->limit, &WorkerState::onRedisDone, &state);
  if (state.check == nullptr) {
    return applyFailure(state);
  }
  return SLUICE_STATUS_STOP;
}

void WorkerState::onRedisDone(void* user_data, const RedisOutcome& outcome) {
  auto* state = static_cast<StreamState*>(user_data);
  state->check = nullptr;
  WorkerState* self = state->worker;
  sluice_stream_t* s = state->stream;
  const sluice_status_t r =
      outcome.ok ? self->apply(*state, outcome.decision) : self->applyFailure(*state);
  if (r == SLUICE_STATUS_CONTINUE) {
    // May run the rest of the chain (and even end the stream) before it returns: `state` is not
    // touched afterwards.
    self->host_->sluice_host_resume(s, SLUICE_DIRECTION_REQUEST);
  }
}

void WorkerState::onResponseHeaders(StreamState& state) {
  if (!config_.config->response_headers || state.rule == nullptr || !state.have_decision) {
    return;
  }
  const Num limit(state.rule->limit.burst);
  const Num remaining(state.decision.remaining);
  const Num reset(ceilSeconds(state.decision.reset_ms));
  host_->sluice_host_header_set(state.stream, SLUICE_HEADERS_RESPONSE,
                                SLUICE_STR("ratelimit-limit"), limit.str());
  host_->sluice_host_header_set(state.stream, SLUICE_HEADERS_RESPONSE,
                                SLUICE_STR("ratelimit-remaining"), remaining.str());
  host_->sluice_host_header_set(state.stream, SLUICE_HEADERS_RESPONSE,
                                SLUICE_STR("ratelimit-reset"), reset.str());
}

// --- the C ABI ------------------------------------------------------------------------------

namespace {

void* onConfigNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) noexcept {
  return common::newConfig<FilterConfig>(host, ctx, json, "ratelimit");
}

void* onWorkerNew(void* config, sluice_worker_t* worker) noexcept {
  try {
    return new WorkerState(*static_cast<FilterConfig*>(config), worker);
  } catch (const std::exception&) {
    return nullptr; // the filter is skipped on this worker
  }
}

void onWorkerDestroy(void*, void* worker_state) noexcept {
  delete static_cast<WorkerState*>(worker_state);
}

void* onStreamNew(void*, void* worker_state, sluice_stream_t* s) noexcept {
  if (worker_state == nullptr) {
    return nullptr;
  }
  try {
    return static_cast<WorkerState*>(worker_state)->newStream(s);
  } catch (const std::exception&) {
    return nullptr;
  }
}

void onStreamDestroy(void* filter) noexcept {
  auto* st = static_cast<StreamState*>(filter);
  st->worker->destroyStream(st);
}

sluice_status_t onRequestHeaders(void* filter, sluice_stream_t*, bool) noexcept {
  auto* st = static_cast<StreamState*>(filter);
  return st->worker->onRequestHeaders(*st);
}

sluice_status_t onResponseHeaders(void* filter, sluice_stream_t*, bool) noexcept {
  auto* st = static_cast<StreamState*>(filter);
  st->worker->onResponseHeaders(*st);
  return SLUICE_STATUS_CONTINUE;
}

constexpr sluice_filter_descriptor_t makeDescriptor() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "ratelimit";
  d.sluice_on_config_new = onConfigNew;
  d.sluice_on_config_destroy = common::deleteConfig<FilterConfig>;
  d.sluice_on_worker_new = onWorkerNew;
  d.sluice_on_worker_destroy = onWorkerDestroy;
  d.sluice_on_stream_new = onStreamNew;
  d.sluice_on_stream_destroy = onStreamDestroy;
  d.sluice_on_request_headers = onRequestHeaders;
  d.sluice_on_response_headers = onResponseHeaders;
  return d;
}

constexpr sluice_filter_descriptor_t kDescriptor = makeDescriptor();

} // namespace

const sluice_filter_descriptor_t& descriptor() {
  return kDescriptor;
}

} // namespace sluice::filters::ratelimit

SLUICE_BUILTIN_MODULE(ratelimit, sluice::filters::ratelimit::kDescriptor,
                      sluice::filters::ratelimit::kHostSizeBase)
