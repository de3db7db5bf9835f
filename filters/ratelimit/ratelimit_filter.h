#pragma once

// ratelimit: token buckets per rule and key, answered from the process-local store or from
// Redis. Written against the C ABI only.

#include "filters/ratelimit/config.h"
#include "filters/ratelimit/local_store.h"
#include "filters/ratelimit/redis_client.h"
#include "sluice/filter.h"

#include <memory>
#include <string>
#include <vector>

namespace sluice::filters::ratelimit {

// What the ABI's `void* config` points to; shared by every worker. The local store is the only
// mutable part (internally sharded and locked per shard).
class FilterConfig {
public:
  static std::unique_ptr<FilterConfig> create(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                                              sluice_str_t json);

  const sluice_host_t* host;
  std::unique_ptr<Config> config;
  std::string name;
  std::unique_ptr<LocalStore> store; // local backend only
  sluice_metric_id_t limited = SLUICE_METRIC_INVALID;
  sluice_metric_id_t cap_hits = SLUICE_METRIC_INVALID;
  RedisMetrics redis_metrics;
};

class WorkerState;

// Per-stream state, pooled per worker (nothing is allocated per request once warm).
struct StreamState {
  WorkerState* worker = nullptr;
  sluice_stream_t* stream = nullptr;
  const Rule* rule = nullptr; // the rule that matched, if any
  Decision decision;
  bool have_decision = false; // false: no rule, or Redis failed
  RedisClient::Check* check = nullptr;
};

class WorkerState {
public:
  WorkerState(FilterConfig& config, sluice_worker_t* worker);
  ~WorkerState();
  WorkerState(const WorkerState&) = delete;
  WorkerState& operator=(const WorkerState&) = delete;

  StreamState* newStream(sluice_stream_t* s);
  void destroyStream(StreamState* st);
  sluice_status_t onRequestHeaders(StreamState& st);
  void onResponseHeaders(StreamState& st);

  RedisClient* redis() { return redis_.get(); }

private:
  // Builds the key of `rule` for the stream into key_; false when the rule does not apply
  // (metadata key absent).
  bool buildKey(const Rule& rule, size_t index, sluice_stream_t* s);
  // Allowed: CONTINUE. Denied: the 429 is sent, STOP.
  sluice_status_t apply(StreamState& st, const Decision& d);
  sluice_status_t applyFailure(StreamState& st);
  static void onRedisDone(void* user_data, const RedisOutcome& outcome);

  FilterConfig& config_;
  const sluice_host_t* host_;
  sluice_worker_t* worker_;
  hs_scratch_t* scratch_ = nullptr;
  std::unique_ptr<RedisClient> redis_;
  std::string key_;
  std::string redis_key_;
  std::vector<StreamState*> free_;
};

const sluice_filter_descriptor_t& descriptor();

} // namespace sluice::filters::ratelimit

extern "C" const sluice_module_t*
sluice_builtin_ratelimit_init(const sluice_host_t* host, uint32_t host_major, uint32_t host_minor);
