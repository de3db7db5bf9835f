#pragma once

// ai_agent_tagger: classifies the request's User-Agent into (provider, agent, purpose) with one
// Hyperscan database over the whole taxonomy, and publishes the result as stream metadata,
// request headers and a per-agent counter; optionally answers listed agents with a local reply.
// Written against the C ABI only.

#include "filters/ai_agent_tagger/config.h"
#include "sluice/filter.h"

#include <memory>
#include <string_view>
#include <vector>

namespace sluice::filters::ai_agent_tagger {

// What the ABI's `void* config` points to. Shared read-only by every worker.
class FilterConfig {
public:
  // Parses and validates `json`; on failure reports every error and returns null.
  static std::unique_ptr<FilterConfig> create(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                                              sluice_str_t json);

  const sluice_host_t& host() const { return *host_; }
  const Config& config() const { return *config_; }
  sluice_metric_id_t metric(size_t agent) const { return metrics_[agent]; }

private:
  FilterConfig(const sluice_host_t* host, std::unique_ptr<Config> config)
      : host_(host), config_(std::move(config)) {}

  const sluice_host_t* host_;
  std::unique_ptr<const Config> config_;
  std::vector<sluice_metric_id_t> metrics_; // per taxonomy agent
};

// Per-worker state: the Hyperscan scratch. It is also every stream's filter object on this
// worker (a stream needs nothing of its own), so nothing is allocated per request.
class WorkerState {
public:
  explicit WorkerState(const FilterConfig& config);
  ~WorkerState();
  WorkerState(const WorkerState&) = delete;
  WorkerState& operator=(const WorkerState&) = delete;

  bool ready() const { return scratch_ != nullptr; }
  sluice_status_t onRequestHeaders(sluice_stream_t* s);

private:
  const FilterConfig& config_;
  hs_scratch_t* scratch_;
};

// The "ai_agent_tagger" filter type.
const sluice_filter_descriptor_t& descriptor();

} // namespace sluice::filters::ai_agent_tagger

extern "C" const sluice_module_t* sluice_builtin_ai_agent_tagger_init(const sluice_host_t* host,
                                                                      uint32_t host_major,
                                                                      uint32_t host_minor);
