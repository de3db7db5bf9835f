#pragma once

// jwt_authn: verifies JWTs on requests that match a rule with `requires`. Written against the
// C ABI only.
//
// Threading: the parsed config (file/inline keys included) is shared read-only by all workers.
// Keys fetched from a cluster are per worker: each worker fetches and refreshes its own set with
// a worker-level timer, so the request path reads a plain pointer and takes no lock. Verified
// tokens are remembered in a per-worker cache, so a repeated token costs a hash and a compare.

#include "filters/jwt_authn/config.h"
#include "filters/jwt_authn/jwks.h"
#include "filters/jwt_authn/token.h"
#include "sluice/filter.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <hs/hs.h>

namespace sluice::filters::jwt_authn {

// How long a request waits for the first key set of a cluster-fetched JWKS.
constexpr uint64_t kKeyWaitMs = 5000;
// Timeout of one JWKS fetch.
constexpr uint32_t kFetchTimeoutMs = 5000;
// Retry delay after a failed fetch while no key set was ever loaded (bounded by cache_ms).
constexpr uint64_t kFirstFetchRetryMs = 1000;

class FilterConfig {
public:
  static std::unique_ptr<FilterConfig> create(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                                              sluice_str_t json);

  const sluice_host_t& host() const { return *host_; }
  const Config& config() const { return *config_; }
  sluice_metric_id_t deniedMetric(Outcome reason) const { return denied_[reasonIndex(reason)]; }
  sluice_metric_id_t fetchFailureMetric(size_t provider) const { return fetch_failures_[provider]; }
  void log(sluice_log_level_t level, std::string_view message) const;
  const std::string& name() const { return name_; }

private:
  FilterConfig(const sluice_host_t* host, std::unique_ptr<Config> config, std::string name)
      : host_(host), config_(std::move(config)), name_(std::move(name)) {}

  const sluice_host_t* host_;
  std::unique_ptr<Config> config_;
  std::string name_;
  std::array<sluice_metric_id_t, kReasonCount> denied_{};
  std::vector<sluice_metric_id_t> fetch_failures_; // per provider (INVALID for static keys)
};

// A bounded, 4-way set-associative cache of verified tokens, keyed by the token's hash and
// compared in full. Entries keep what the headers need and are dropped when the token expires
// or the key set they were verified with is replaced.
class TokenCache {
public:
  struct Entry {
    bool used = false;
    uint64_t hash = 0;
    size_t provider = 0;
    uint64_t generation = 0;
    std::string token;
    VerifiedToken verified;
  };

  explicit TokenCache(size_t capacity);
  bool enabled() const { return !entries_.empty(); }
  Entry* find(uint64_t hash, size_t provider, uint64_t generation, std::string_view token);
  // The slot a new entry for `hash` goes to (an empty one of its set, else a victim).
  Entry& slotFor(uint64_t hash);

private:
  static constexpr size_t kWays = 4;
  std::vector<Entry> entries_;
  size_t set_mask_ = 0;
};

class WorkerState;

// Per-stream object, recycled through the worker's pool (no allocation per request once warm).
// It only carries state while the request waits for a cluster-fetched key set.
struct StreamFilter {
  enum class State : uint8_t { Idle, Waiting, Posted, Done };
  WorkerState* worker = nullptr;
  sluice_stream_t* stream = nullptr;
  State state = State::Idle;
  size_t provider = 0;
  std::string token;
  sluice_timer_id_t wait_timer = 0;
};

// Key set of one cluster-fetched provider on one worker.
struct RemoteKeys {
  WorkerState* worker = nullptr;
  size_t provider = 0;
  std::shared_ptr<const KeySet> keys;
  uint64_t generation = 1;
  std::string body; // the document the keys came from: an unchanged refresh keeps the cache
  sluice_timer_id_t timer = 0;
  sluice_call_id_t call = 0;
  sluice_ready_id_t ready_hold = 0; // holds the process's readiness until the first fetch ends
  std::vector<StreamFilter*> waiting;
};

class WorkerState {
public:
  WorkerState(const FilterConfig& config, sluice_worker_t* worker);
  ~WorkerState();
  WorkerState(const WorkerState&) = delete;
  WorkerState& operator=(const WorkerState&) = delete;

  StreamFilter* newStream(sluice_stream_t* s);
  void releaseStream(StreamFilter* f);

  sluice_status_t onRequestHeaders(StreamFilter& f, sluice_stream_t* s);
  void onStreamComplete(StreamFilter& f);

  // Callbacks.
  void onRefreshTimer(RemoteKeys& rk);
  void onFetchDone(RemoteKeys& rk, const sluice_http_response_t* response);
  void onWaitTimeout(StreamFilter& f);
  void onWaiterReady(StreamFilter& f);

  const RemoteKeys* remote(size_t provider) const { return remote_[provider].get(); }

private:
  // Verifies (or finds in the cache) `token` for provider `pi` and, when valid, sets the
  // forwarded headers on the stream.
  Outcome authenticate(size_t pi, std::string_view token, sluice_stream_t* s);
  void applyHeaders(const Provider& p, std::string_view token, const VerifiedToken& v,
                    sluice_stream_t* s);
  void deny(const Provider& p, Outcome outcome, sluice_stream_t* s);
  std::string_view extractToken(const Provider& p, sluice_stream_t* s);
  void startFetch(RemoteKeys& rk);
  void releaseReadyHold(RemoteKeys& rk);
  void fetchFinished(RemoteKeys& rk, bool ok, std::string_view why);

  const FilterConfig& config_;
  const sluice_host_t& host_;
  sluice_worker_t* const worker_;
  hs_scratch_t* scratch_ = nullptr;
  TokenCache cache_;
  VerifyScratch verify_scratch_;
  VerifiedToken verified_;
  std::string query_token_;
  std::string payload_;                             // the payload segment being forwarded
  std::vector<std::unique_ptr<RemoteKeys>> remote_; // per provider, null for static keys
  std::vector<std::unique_ptr<StreamFilter>> streams_;
  std::vector<StreamFilter*> free_streams_;
};

const sluice_filter_descriptor_t& descriptor();

} // namespace sluice::filters::jwt_authn

extern "C" const sluice_module_t*
sluice_builtin_jwt_authn_init(const sluice_host_t* host, uint32_t host_major, uint32_t host_minor);
