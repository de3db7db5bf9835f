#include "filters/jwt_authn/jwt_authn_filter.h"

#include "filters/common/host_check.h"

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>

namespace sluice::filters::jwt_authn {

namespace {

std::string_view view(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}

sluice_str_t str(std::string_view s) {
  return sluice_str_t{s.data(), s.size()};
}

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) {
    return false;
  }
  for (size_t i = 0; i < prefix.size(); i++) {
    char a = s[i];
    char b = prefix[i];
    a = a >= 'A' && a <= 'Z' ? static_cast<char>(a + 32) : a;
    b = b >= 'A' && b <= 'Z' ? static_cast<char>(b + 32) : b;
    if (a != b) {
      return false;
    }
  }
  return true;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// Percent-decodes `in` into `out`; false on a broken escape.
bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return false;
    }
    const int hi = hexValue(in[i + 1]);
    const int lo = hexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

uint64_t tokenHash(std::string_view token, size_t provider) {
  return std::hash<std::string_view>{}(token) ^
         (static_cast<uint64_t>(provider) * 0x9e3779b97f4a7c15ull);
}

double nowSeconds(const sluice_host_t& host, sluice_stream_t* s) {
  sluice_stream_info_t info{};
  info.size = offsetof(sluice_stream_info_t, start_unix_us) + sizeof(info.start_unix_us);
  host.sluice_host_stream_info(s, &info);
  return static_cast<double>(info.start_unix_us) / 1e6;
}

} // namespace

// --- FilterConfig --------------------------------------------------------------------------

std::unique_ptr<FilterConfig> FilterConfig::create(const sluice_host_t* host,
                                                   sluice_config_ctx_t* ctx, sluice_str_t json) {
  common::ConfigReader reader;
  std::unique_ptr<Config> config = parseConfig(host, ctx, json, reader);
  if (!reader.report(host, ctx) || config == nullptr) {
    return nullptr;
  }
  const std::string name(view(host->sluice_host_config_name(ctx)));
  std::unique_ptr<FilterConfig> fc(new FilterConfig(host, std::move(config), name));
  static constexpr std::string_view kDeniedHelp =
      "Requests jwt_authn denied, by reason (missing, malformed, signature, expired, "
      "not_yet_valid, issuer, audience, algorithm).";
  for (size_t i = 0; i < kReasonCount; i++) {
    const char* reason = reasonName(static_cast<Outcome>(i + 1));
    const sluice_header_t labels[] = {{SLUICE_STR("filter"), str(name)},
                                      {SLUICE_STR("reason"), str(reason)}};
    fc->denied_[i] = host->sluice_host_config_define_metric(
        ctx, SLUICE_METRIC_COUNTER, SLUICE_STR("sluice_jwt_authn_denied_total"), str(kDeniedHelp),
        labels, 2, nullptr, 0);
  }
  const Config& c = *fc->config_;
  fc->fetch_failures_.assign(c.providers.size(), SLUICE_METRIC_INVALID);
  for (size_t i = 0; i < c.providers.size(); i++) {
    if (!c.providers[i].remote) {
      continue;
    }
    const sluice_header_t labels[] = {{SLUICE_STR("filter"), str(name)},
                                      {SLUICE_STR("provider"), str(c.providers[i].name)}};
    fc->fetch_failures_[i] = host->sluice_host_config_define_metric(
        ctx, SLUICE_METRIC_COUNTER, SLUICE_STR("sluice_jwt_authn_jwks_fetch_failures_total"),
        SLUICE_STR("JWKS fetches from a cluster that failed (error, bad status or not a JWKS); "
                   "the last good key set stays in use."),
        labels, 2, nullptr, 0);
  }
  return fc;
}

void FilterConfig::log(sluice_log_level_t level, std::string_view message) const {
  host_->sluice_host_log(nullptr, nullptr, level, str(message));
}

// --- TokenCache ----------------------------------------------------------------------------

TokenCache::TokenCache(size_t capacity) {
  if (capacity == 0) {
    return;
  }
  size_t sets = 1;
  while (sets * kWays < capacity) {
    sets *= 2;
  }
  entries_.resize(sets * kWays);
  set_mask_ = sets - 1;
}

TokenCache::Entry* TokenCache::find(uint64_t hash, size_t provider, uint64_t generation,
                                    std::string_view token) {
  Entry* set = &entries_[(hash & set_mask_) * kWays];
  for (size_t i = 0; i < kWays; i++) {
    Entry& e = set[i];
    if (e.used && e.hash == hash && e.provider == provider && e.generation == generation &&
        e.token == token) {
      return &e;
    }
  }
  return nullptr;
}

TokenCache::Entry& TokenCache::slotFor(uint64_t hash) {
  Entry* set = &entries_[(hash & set_mask_) * kWays];
  for (size_t i = 0; i < kWays; i++) {
    if (!set[i].used) {
      return set[i];
    }
  }
  return set[(hash >> 40) % kWays];
}

// --- WorkerState ---------------------------------------------------------------------------

namespace {

void refreshTimerCb(void* user_data) {
  auto* rk = static_cast<RemoteKeys*>(user_data);
  rk->worker->onRefreshTimer(*rk);
}

void fetchDoneCb(void* user_data, const sluice_http_response_t* response) {
  auto* rk = static_cast<RemoteKeys*>(user_data);
  rk->worker->onFetchDone(*rk, response);
}

void waitTimeoutCb(void* user_data) {
  auto* f = static_cast<StreamFilter*>(user_data);
  f->worker->onWaitTimeout(*f);
}

void waiterReadyCb(void* user_data) {
  auto* f = static_cast<StreamFilter*>(user_data);
  f->worker->onWaiterReady(*f);
}

} // namespace

WorkerState::WorkerState(const FilterConfig& config, sluice_worker_t* worker)
    : config_(config), host_(config.host()), worker_(worker),
      scratch_(config.config().matches.newScratch()), cache_(config.config().token_cache_entries) {
  const Config& c = config_.config();
  remote_.resize(c.providers.size());
  for (size_t i = 0; i < c.providers.size(); i++) {
    if (!c.providers[i].remote) {
      continue;
    }
    remote_[i] = std::make_unique<RemoteKeys>();
    remote_[i]->worker = this;
    remote_[i]->provider = i;
    if (common::hostHasReadiness(host_)) { // ABI 1.2: /ready waits for the first fetch to end
      const std::string what = "jwt_authn \"" + config.name() +
                               "\": first JWKS fetch of provider \"" + c.providers[i].name +
                               "\" from cluster \"" + c.providers[i].jwks.cluster + "\"";
      remote_[i]->ready_hold = host_.sluice_host_ready_hold(worker_, str(what));
    }
    // The first fetch runs from the loop, once the worker is fully up.
    remote_[i]->timer =
        host_.sluice_host_timer_start(worker_, nullptr, 0, refreshTimerCb, remote_[i].get());
  }
}

WorkerState::~WorkerState() {
  for (auto& rk : remote_) {
    if (!rk) {
      continue;
    }
    if (rk->timer != 0) {
      host_.sluice_host_timer_cancel(worker_, rk->timer);
    }
    if (rk->call != 0) {
      host_.sluice_host_http_call_cancel(worker_, rk->call);
    }
    releaseReadyHold(*rk);
  }
  if (scratch_ != nullptr) {
    hs_free_scratch(scratch_);
  }
}

StreamFilter* WorkerState::newStream(sluice_stream_t* s) {
  StreamFilter* f = nullptr;
  if (free_streams_.empty()) {
    streams_.push_back(std::make_unique<StreamFilter>());
    f = streams_.back().get();
    f->worker = this;
  } else {
    f = free_streams_.back();
    free_streams_.pop_back();
  }
  f->stream = s;
  f->state = StreamFilter::State::Idle;
  f->wait_timer = 0;
  return f;
}

void WorkerState::releaseStream(StreamFilter* f) {
  f->stream = nullptr;
  f->state = StreamFilter::State::Idle;
  free_streams_.push_back(f);
}

std::string_view WorkerState::extractToken(const Provider& p, sluice_stream_t* s) {
  for (const TokenHeader& h : p.from_headers) {
    sluice_str_t v{nullptr, 0};
    if (!host_.sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, str(h.name), 0, &v)) {
      continue;
    }
    std::string_view value = view(v);
    if (!startsWithIgnoreCase(value, h.prefix)) {
      continue; // another scheme (Basic ...) is not a token for this provider
    }
    value.remove_prefix(h.prefix.size());
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
      value.remove_suffix(1);
    }
    if (!value.empty()) {
      return value;
    }
  }
  if (p.from_query.empty()) {
    return {};
  }
  sluice_str_t path{nullptr, 0};
  if (!host_.sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR(":path"), 0, &path)) {
    return {};
  }
  std::string_view target = view(path);
  const size_t q = target.find('?');
  if (q == std::string_view::npos) {
    return {};
  }
  std::string_view query = target.substr(q + 1);
  const size_t hash = query.find('#');
  if (hash != std::string_view::npos) {
    query = query.substr(0, hash);
  }
  for (const std::string& name : p.from_query) {
    std::string_view rest = query;
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      std::string_view param = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos || param.substr(0, eq) != name) {
        continue;
      }
      std::string_view value = param.substr(eq + 1);
      if (value.empty()) {
        continue;
      }
      if (value.find('%') == std::string_view::npos) {
        return value;
      }
      // An undecodable value is still handed on, to be rejected as malformed.
      if (!percentDecode(value, query_token_) || query_token_.empty()) {
        return value;
      }
      return query_token_;
    }
  }
  return {};
}

void WorkerState::applyHeaders(const Provider& p, std::string_view token, const VerifiedToken& v,
                               sluice_stream_t* s) {
  // `token` may point into the request's header map, which the writes below modify: the
  // payload is copied out first (into a reused buffer).
  if (!p.forward_payload_header.empty()) {
    payload_.assign(token.substr(v.payload_offset, v.payload_len));
  }
  for (const std::string& name : p.strip_others) {
    host_.sluice_host_header_remove(s, SLUICE_HEADERS_REQUEST, str(name));
  }
  if (!p.forward_payload_header.empty()) {
    host_.sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, str(p.forward_payload_header),
                                 str(payload_));
  }
  for (size_t i = 0; i < p.claim_to_headers.size(); i++) {
    const std::string& name = p.claim_to_headers[i].header;
    if (i < v.claims.size() && v.claims[i].first) {
      host_.sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, str(name), str(v.claims[i].second));
    } else {
      // The claim is absent: a client-sent header of that name must not pass as if it were one.
      host_.sluice_host_header_remove(s, SLUICE_HEADERS_REQUEST, str(name));
    }
  }
}

Outcome WorkerState::authenticate(size_t pi, std::string_view token, sluice_stream_t* s) {
  const Provider& p = config_.config().providers[pi];
  const double now = nowSeconds(host_, s);
  const KeySet* keys = p.static_keys.get();
  uint64_t generation = 0;
  if (p.remote) {
    keys = remote_[pi]->keys.get();
    generation = remote_[pi]->generation;
  }
  if (token.size() > kMaxTokenBytes) {
    return Outcome::Malformed;
  }
  uint64_t hash = 0;
  if (cache_.enabled()) {
    hash = tokenHash(token, pi);
    if (TokenCache::Entry* e = cache_.find(hash, pi, generation, token)) {
      const Outcome time = checkTime(p, e->verified.exp, e->verified.nbf, now);
      if (time != Outcome::Ok) {
        e->used = false;
        return time;
      }
      applyHeaders(p, token, e->verified, s);
      return Outcome::Ok;
    }
  }
  const Outcome outcome = verifyToken(p, keys, token, now, verify_scratch_, verified_);
  if (outcome != Outcome::Ok) {
    return outcome;
  }
  if (cache_.enabled()) {
    TokenCache::Entry& e = cache_.slotFor(hash);
    e.used = true;
    e.hash = hash;
    e.provider = pi;
    e.generation = generation;
    e.token.assign(token);
    e.verified = verified_;
  }
  applyHeaders(p, token, verified_, s);
  return Outcome::Ok;
}

void WorkerState::deny(const Provider& p, Outcome outcome, sluice_stream_t* s) {
  host_.sluice_host_metric_add(config_.deniedMetric(outcome), 1);
  const bool forbidden = outcome == Outcome::Audience;
  const std::string& challenge = outcome == Outcome::Missing ? p.realm_header_missing
                                 : forbidden                 ? p.realm_header_forbidden
                                                             : p.realm_header_invalid;
  const sluice_header_t headers[] = {{SLUICE_STR("www-authenticate"), str(challenge)},
                                     {SLUICE_STR("content-type"), SLUICE_STR("text/plain")}};
  std::string_view body;
  switch (outcome) {
  case Outcome::Missing:
    body = "jwt_authn: missing token\n";
    break;
  case Outcome::Audience:
    body = "jwt_authn: audience not allowed\n";
    break;
  default:
    body = "jwt_authn: invalid token\n";
    break;
  }
  static constexpr std::string_view kDetails[kReasonCount] = {
      "jwt_authn_missing",  "jwt_authn_malformed",     "jwt_authn_signature",
      "jwt_authn_expired",  "jwt_authn_not_yet_valid", "jwt_authn_issuer",
      "jwt_authn_audience", "jwt_authn_algorithm"};
  host_.sluice_host_send_local_reply(s, forbidden ? 403 : 401, headers, 2, str(body),
                                     str(kDetails[reasonIndex(outcome)]));
}

sluice_status_t WorkerState::onRequestHeaders(StreamFilter& f, sluice_stream_t* s) {
  const Config& c = config_.config();
  const Rule* rule = nullptr;
  for (const Rule& r : c.rules) {
    if (c.matches.matches(r.match, &host_, s, scratch_)) {
      rule = &r;
      break;
    }
  }
  if (rule == nullptr || rule->provider < 0) {
    for (const std::string& name : c.strip_unverified) {
      host_.sluice_host_header_remove(s, SLUICE_HEADERS_REQUEST, str(name));
    }
    return SLUICE_STATUS_CONTINUE;
  }
  const size_t pi = static_cast<size_t>(rule->provider);
  const Provider& p = c.providers[pi];
  const std::string_view token = extractToken(p, s);
  if (token.empty()) {
    deny(p, Outcome::Missing, s);
    return SLUICE_STATUS_STOP;
  }
  if (p.remote && !remote_[pi]->keys) {
    // No key set yet: wait for the first fetch (bounded), then verify.
    RemoteKeys& rk = *remote_[pi];
    f.state = StreamFilter::State::Waiting;
    f.provider = pi;
    f.token.assign(token);
    rk.waiting.push_back(&f);
    f.wait_timer = host_.sluice_host_timer_start(worker_, s, kKeyWaitMs, waitTimeoutCb, &f);
    if (rk.call == 0) {
      if (rk.timer != 0) {
        host_.sluice_host_timer_cancel(worker_, rk.timer);
        rk.timer = 0;
      }
      startFetch(rk);
    }
    return SLUICE_STATUS_STOP;
  }
  const Outcome outcome = authenticate(pi, token, s);
  if (outcome != Outcome::Ok) {
    deny(p, outcome, s);
    return SLUICE_STATUS_STOP;
  }
  return SLUICE_STATUS_CONTINUE;
}

void WorkerState::onStreamComplete(StreamFilter& f) {
  if (f.state == StreamFilter::State::Waiting) {
    auto& waiting = remote_[f.provider]->waiting;
    for (size_t i = 0; i < waiting.size(); i++) {
      if (waiting[i] == &f) {
        waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  if (f.wait_timer != 0) {
    host_.sluice_host_timer_cancel(worker_, f.wait_timer);
    f.wait_timer = 0;
  }
  f.state = StreamFilter::State::Done;
}

void WorkerState::onWaitTimeout(StreamFilter& f) {
  f.wait_timer = 0;
  if (f.state != StreamFilter::State::Waiting && f.state != StreamFilter::State::Posted) {
    return;
  }
  onStreamComplete(f); // leaves the waiting list
  deny(config_.config().providers[f.provider], Outcome::Signature, f.stream);
}

void WorkerState::onWaiterReady(StreamFilter& f) {
  if (f.state != StreamFilter::State::Posted) {
    return;
  }
  if (f.wait_timer != 0) {
    host_.sluice_host_timer_cancel(worker_, f.wait_timer);
    f.wait_timer = 0;
  }
  f.state = StreamFilter::State::Done;
  const Outcome outcome = authenticate(f.provider, f.token, f.stream);
  if (outcome != Outcome::Ok) {
    deny(config_.config().providers[f.provider], outcome, f.stream);
    return;
  }
  host_.sluice_host_resume(f.stream, SLUICE_DIRECTION_REQUEST);
}

void WorkerState::startFetch(RemoteKeys& rk) {
  const Provider& p = config_.config().providers[rk.provider];
  const sluice_header_t headers[] = {{SLUICE_STR("accept"), SLUICE_STR("application/json")}};
  rk.call = host_.sluice_host_http_call(worker_, nullptr, str(p.jwks.cluster), SLUICE_STR("GET"),
                                        str(p.jwks.path), headers, 1, SLUICE_STR(""),
                                        kFetchTimeoutMs, fetchDoneCb, &rk);
  if (rk.call == 0) {
    fetchFinished(rk, false, "the call could not be started");
  }
}

void WorkerState::onRefreshTimer(RemoteKeys& rk) {
  rk.timer = 0;
  if (rk.call == 0) {
    startFetch(rk);
  }
}

void WorkerState::onFetchDone(RemoteKeys& rk, const sluice_http_response_t* response) {
  rk.call = 0;
  if (response->status != 200) {
    const std::string why = response->status == 0 ? "error " + std::string(view(response->error))
                                                  : "status " + std::to_string(response->status);
    fetchFinished(rk, false, why);
    return;
  }
  const std::string_view body = view(response->body);
  if (rk.keys && body == rk.body) {
    fetchFinished(rk, true, {}); // unchanged: the cached tokens stay valid
    return;
  }
  const nlohmann::json doc = nlohmann::json::parse(body, nullptr, false);
  std::vector<JwksError> errors;
  std::shared_ptr<const KeySet> keys = doc.is_discarded() ? nullptr : parseJwks(doc, false, errors);
  if (!keys) {
    fetchFinished(rk, false,
                  doc.is_discarded()
                      ? "the answer is not JSON"
                      : "not a usable JWKS: " +
                            (errors.empty() ? std::string() : errors.back().message));
    return;
  }
  rk.keys = std::move(keys);
  rk.body.assign(body);
  rk.generation++;
  fetchFinished(rk, true, {});
}

void WorkerState::releaseReadyHold(RemoteKeys& rk) {
  if (rk.ready_hold != 0) {
    host_.sluice_host_ready_release(rk.ready_hold);
    rk.ready_hold = 0;
  }
}

void WorkerState::fetchFinished(RemoteKeys& rk, bool ok, std::string_view why) {
  const Provider& p = config_.config().providers[rk.provider];
  // The first fetch has ended, well or not: a failing key server must not keep the process
  // unready forever (requests then wait for keys, bounded, and get 401 without them).
  releaseReadyHold(rk);
  if (!ok) {
    host_.sluice_host_metric_add(config_.fetchFailureMetric(rk.provider), 1);
    if (host_.sluice_host_worker_index(worker_) == 0) { // one line per round, not per worker
      config_.log(SLUICE_LOG_WARN,
                  "jwt_authn provider \"" + p.name + "\": JWKS fetch from cluster \"" +
                      p.jwks.cluster + "\" failed (" + std::string(why) + ")" +
                      (rk.keys ? "; keeping the last good key set" : "; no key set yet"));
    }
  }
  const uint64_t delay = rk.keys ? p.jwks.cache_ms : std::min(p.jwks.cache_ms, kFirstFetchRetryMs);
  if (rk.timer == 0) {
    rk.timer = host_.sluice_host_timer_start(worker_, nullptr, delay, refreshTimerCb, &rk);
  }
  // Waiting requests are handled from their own streams' context.
  for (StreamFilter* f : rk.waiting) {
    f->state = StreamFilter::State::Posted;
    host_.sluice_host_post(worker_, f->stream, waiterReadyCb, f);
  }
  rk.waiting.clear();
}

// --- the C ABI ------------------------------------------------------------------------------

namespace {

void* onConfigNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) noexcept {
  return common::newConfig<FilterConfig>(host, ctx, json, "jwt_authn");
}

void* onWorkerNew(void* config, sluice_worker_t* worker) noexcept {
  return new WorkerState(*static_cast<FilterConfig*>(config), worker);
}

void onWorkerDestroy(void*, void* worker_state) noexcept {
  delete static_cast<WorkerState*>(worker_state);
}

void* onStreamNew(void*, void* worker_state, sluice_stream_t* s) noexcept {
  return static_cast<WorkerState*>(worker_state)->newStream(s);
}

void onStreamDestroy(void* filter) noexcept {
  auto* f = static_cast<StreamFilter*>(filter);
  f->worker->releaseStream(f);
}

sluice_status_t onRequestHeaders(void* filter, sluice_stream_t* s, bool) noexcept {
  auto* f = static_cast<StreamFilter*>(filter);
  return f->worker->onRequestHeaders(*f, s);
}

void onStreamComplete(void* filter, sluice_stream_t*) noexcept {
  auto* f = static_cast<StreamFilter*>(filter);
  f->worker->onStreamComplete(*f);
}

constexpr sluice_filter_descriptor_t makeDescriptor() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "jwt_authn";
  d.sluice_on_config_new = onConfigNew;
  d.sluice_on_config_destroy = common::deleteConfig<FilterConfig>;
  d.sluice_on_worker_new = onWorkerNew;
  d.sluice_on_worker_destroy = onWorkerDestroy;
  d.sluice_on_stream_new = onStreamNew;
  d.sluice_on_stream_destroy = onStreamDestroy;
  d.sluice_on_request_headers = onRequestHeaders;
  d.sluice_on_stream_complete = onStreamComplete;
  return d;
}

constexpr sluice_filter_descriptor_t kDescriptor = makeDescriptor();

// Everything this filter calls lives at or before sluice_host_worker_index in the host table.
constexpr size_t kHostSizeNeeded = offsetof(sluice_host_t, sluice_host_worker_index) +
                                   sizeof(sluice_host_t::sluice_host_worker_index);

} // namespace

const sluice_filter_descriptor_t& descriptor() {
  return kDescriptor;
}

} // namespace sluice::filters::jwt_authn

SLUICE_BUILTIN_MODULE(jwt_authn, sluice::filters::jwt_authn::kDescriptor,
                      sluice::filters::jwt_authn::kHostSizeNeeded)
