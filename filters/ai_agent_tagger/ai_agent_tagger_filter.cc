#include "filters/ai_agent_tagger/ai_agent_tagger_filter.h"

#include "filters/common/host_check.h"

#include <cstddef>
#include <exception>
#include <string>

namespace sluice::filters::ai_agent_tagger {

namespace {

constexpr size_t kMaxResolvedPath = 4096;

std::string_view view(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}
sluice_str_t str(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}

} // namespace

// --- FilterConfig ---------------------------------------------------------------------------

std::unique_ptr<FilterConfig> FilterConfig::create(const sluice_host_t* host,
                                                   sluice_config_ctx_t* ctx, sluice_str_t json) {
  common::ConfigReader reader;
  const PathResolver resolve = [&](std::string_view path) -> std::optional<std::string> {
    char out[kMaxResolvedPath];
    const size_t n = host->sluice_host_config_resolve_path(ctx, str(path), out, sizeof(out));
    if (n == 0 || n >= sizeof(out)) {
      return std::nullopt;
    }
    return std::string(out, n);
  };
  std::unique_ptr<Config> config = parseConfig(json, resolve, reader);
  if (config == nullptr) {
    reader.report(host, ctx);
    return nullptr;
  }
  std::unique_ptr<FilterConfig> self(new FilterConfig(host, std::move(config)));
  // One counter instance per agent, defined now so that counting is lock-free and allocation-free.
  const Taxonomy& t = self->config_->classifier->taxonomy();
  self->metrics_.reserve(t.agents.size());
  for (const Agent& a : t.agents) {
    const sluice_header_t labels[] = {{SLUICE_STR("provider"), str(a.provider)},
                                      {SLUICE_STR("agent"), str(a.name)}};
    const sluice_metric_id_t id = host->sluice_host_config_define_metric(
        ctx, SLUICE_METRIC_COUNTER, SLUICE_STR("sluice_ai_agent_requests_total"),
        SLUICE_STR("Requests whose User-Agent the ai_agent_tagger classified as an AI agent."),
        labels, 2, nullptr, 0);
    if (id == SLUICE_METRIC_INVALID) {
      return nullptr; // the host has reported why
    }
    self->metrics_.push_back(id);
    // An info series per agent (value 1), so a dashboard or the status page can show the
    // purpose of an agent next to its request count without a per-request label.
    const sluice_header_t info_labels[] = {{SLUICE_STR("provider"), str(a.provider)},
                                           {SLUICE_STR("agent"), str(a.name)},
                                           {SLUICE_STR("purpose"), str(a.purpose)}};
    const sluice_metric_id_t info = host->sluice_host_config_define_metric(
        ctx, SLUICE_METRIC_GAUGE, SLUICE_STR("sluice_ai_agent_info"),
        SLUICE_STR("1 for every agent of the ai_agent_tagger taxonomy, with its provider and "
                   "purpose."),
        info_labels, 3, nullptr, 0);
    if (info == SLUICE_METRIC_INVALID) {
      return nullptr;
    }
    host->sluice_host_metric_set(info, 1);
  }
  return self;
}

// --- WorkerState ----------------------------------------------------------------------------

WorkerState::WorkerState(const FilterConfig& config)
    : config_(config), scratch_(config.config().classifier->newScratch()) {
  if (scratch_ == nullptr) {
    config_.host().sluice_host_log(
        nullptr, nullptr, SLUICE_LOG_ERROR,
        SLUICE_STR("ai_agent_tagger: cannot allocate Hyperscan scratch on this worker; requests "
                   "are not classified (tag headers are still removed)"));
  }
}

WorkerState::~WorkerState() {
  if (scratch_ != nullptr) {
    hs_free_scratch(scratch_);
  }
}

sluice_status_t WorkerState::onRequestHeaders(sluice_stream_t* s) {
  const sluice_host_t& h = config_.host();
  const Config& c = config_.config();
  // Classify the first User-Agent before touching the header map (its view dies with any edit).
  int idx = Classifier::kNone;
  sluice_str_t ua{nullptr, 0};
  if (h.sluice_host_header_get(s, SLUICE_HEADERS_REQUEST, SLUICE_STR("user-agent"), 0, &ua)) {
    idx = c.classifier->classify(view(ua), scratch_);
  }
  // A client must never be able to set the tags itself: drop incoming copies on every request.
  for (const std::string* name : {&c.agent_header, &c.provider_header, &c.purpose_header}) {
    if (!name->empty()) {
      h.sluice_host_header_remove(s, SLUICE_HEADERS_REQUEST, str(*name));
    }
  }
  if (idx == Classifier::kNone) {
    return SLUICE_STATUS_CONTINUE;
  }
  const Agent& a = c.taxonomy->agents[static_cast<size_t>(idx)];
  h.sluice_host_metadata_set(s, SLUICE_STR("ai.provider"), str(a.provider));
  h.sluice_host_metadata_set(s, SLUICE_STR("ai.agent"), str(a.name));
  h.sluice_host_metadata_set(s, SLUICE_STR("ai.purpose"), str(a.purpose));
  if (!c.agent_header.empty()) {
    h.sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, str(c.agent_header), str(a.name));
  }
  if (!c.provider_header.empty()) {
    h.sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, str(c.provider_header), str(a.provider));
  }
  if (!c.purpose_header.empty()) {
    h.sluice_host_header_set(s, SLUICE_HEADERS_REQUEST, str(c.purpose_header), str(a.purpose));
  }
  h.sluice_host_metric_add(config_.metric(static_cast<size_t>(idx)), 1);
  if (c.blocked[static_cast<size_t>(idx)]) {
    static const sluice_header_t kHeaders[] = {
        {SLUICE_STR("content-type"), SLUICE_STR("text/plain; charset=utf-8")}};
    h.sluice_host_send_local_reply(s, c.block_status, kHeaders, 1,
                                   SLUICE_STR("blocked: AI agent\n"),
                                   SLUICE_STR("ai_agent_blocked"));
    return SLUICE_STATUS_STOP;
  }
  return SLUICE_STATUS_CONTINUE;
}

// --- the C ABI ------------------------------------------------------------------------------

namespace {

void* onConfigNew(const sluice_host_t* host, sluice_config_ctx_t* ctx, sluice_str_t json) noexcept {
  return common::newConfig<FilterConfig>(host, ctx, json, "ai_agent_tagger");
}

void* onWorkerNew(void* config, sluice_worker_t*) noexcept {
  try {
    return new WorkerState(*static_cast<FilterConfig*>(config));
  } catch (...) {
    return nullptr;
  }
}

void onWorkerDestroy(void*, void* worker_state) noexcept {
  delete static_cast<WorkerState*>(worker_state);
}

void* onStreamNew(void*, void* worker_state, sluice_stream_t*) noexcept {
  return worker_state;
}

void onStreamDestroy(void*) noexcept {}

sluice_status_t onRequestHeaders(void* filter, sluice_stream_t* s, bool) noexcept {
  return static_cast<WorkerState*>(filter)->onRequestHeaders(s);
}

constexpr sluice_filter_descriptor_t makeDescriptor() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "ai_agent_tagger";
  d.sluice_on_config_new = onConfigNew;
  d.sluice_on_config_destroy = common::deleteConfig<FilterConfig>;
  d.sluice_on_worker_new = onWorkerNew;
  d.sluice_on_worker_destroy = onWorkerDestroy;
  d.sluice_on_stream_new = onStreamNew;
  d.sluice_on_stream_destroy = onStreamDestroy;
  d.sluice_on_request_headers = onRequestHeaders;
  return d;
}

constexpr sluice_filter_descriptor_t kDescriptor = makeDescriptor();

// Everything this filter calls lives at or before sluice_host_metadata_set in the host table.
constexpr size_t kHostSizeNeeded = offsetof(sluice_host_t, sluice_host_metadata_set) +
                                   sizeof(sluice_host_t::sluice_host_metadata_set);

} // namespace

const sluice_filter_descriptor_t& descriptor() {
  return kDescriptor;
}

} // namespace sluice::filters::ai_agent_tagger

SLUICE_BUILTIN_MODULE(ai_agent_tagger, sluice::filters::ai_agent_tagger::kDescriptor,
                      sluice::filters::ai_agent_tagger::kHostSizeNeeded)
