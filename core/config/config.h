#pragma once

// Typed, validated configuration. The only room that sees nlohmann/json is core/config; every
// other room reads these plain structs. A Config is immutable once loaded and is shared through
// std::shared_ptr<const Config> as part of a snapshot.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::config {

// "host:port" split; host may be an IPv4/IPv6 literal ("[::1]:80") or a hostname.
struct Address {
  std::string host; // without brackets
  uint16_t port = 0;
  bool is_ip = false; // host is an IP literal
  std::string text;   // as written ("127.0.0.1:8080")
};

struct AdminConfig {
  bool enabled = false;
  Address address;
  std::string api_key; // resolved secret; empty = none
};

struct StartupConfig {
  uint64_t wait_for_config_ms = 5000;
};

struct ShutdownConfig {
  uint64_t pre_drain_ms = 5000;
  uint64_t drain_ms = 30000;
  uint64_t teardown_ms = 5000;
  uint64_t grace_period_ms = 60000;
};

// Process-wide overload protection (0 = no limit). Past a limit new connections are closed at
// accept or new requests answered 503, each counted in sluice_overload_actions_total.
struct OverloadConfig {
  uint64_t max_connections = 0;               // downstream connections, all workers together
  uint64_t max_requests_per_worker = 0;       // requests in flight on one worker
  uint64_t max_buffered_bytes_per_worker = 0; // bytes held in one worker's downstream buffers
};

struct TlsCertificate {
  std::string cert_file; // resolved against the config folder
  std::string key_file;
};

struct ListenerTls {
  std::vector<TlsCertificate> certificates;
  std::string min_version = "1.2";
  std::vector<std::string> alpn;
};

struct ListenerLimits {
  uint64_t max_connections = 100000;
  uint64_t max_request_headers_bytes = 65536;
  uint64_t max_request_body_bytes = 0; // 0 = unlimited
  uint64_t header_timeout_ms = 10000;
  uint64_t idle_timeout_ms = 60000;
};

struct RequestIdConfig {
  std::string header = "x-request-id"; // lower-case
  bool trust_incoming = true;
};

struct FilterEntry {
  std::string type;
  std::string name;        // defaults to type
  std::string module;      // resolved path of a .so; empty = built-in/linked
  std::string config_json; // the "config" value serialized ("{}" when absent)
  std::string pointer;     // JSON pointer of this entry, e.g. "/listeners/0/filters/2"
};

struct ListenerConfig {
  std::string name;
  Address address;
  std::optional<ListenerTls> tls;
  ListenerLimits limits;
  RequestIdConfig request_id;
  // connection_balance "exact": a worker hands a new connection to the worker with the fewest
  // open connections on this listener; "kernel" (default): the SO_REUSEPORT hash decides.
  bool exact_balance = false;
  std::vector<FilterEntry> filters;
  std::string pointer; // "/listeners/N"
};

struct EndpointConfig {
  Address address;
  uint32_t weight = 1;
};

enum class LbPolicy { RoundRobin, LeastRequest, Random, RingHash, Maglev };

struct HashOn {
  std::string header; // lower-case; empty when client_ip
  bool client_ip = false;
};

struct PoolConfig {
  uint32_t max_idle_per_worker = 64;
  uint64_t idle_timeout_ms = 60000;
  uint32_t max_connections = 1024; // per worker
};

struct HealthCheckConfig {
  std::string path = "/healthz";
  uint64_t interval_ms = 5000;
  uint64_t timeout_ms = 1000;
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  std::vector<uint32_t> expected_statuses{200};
};

struct OutlierDetectionConfig {
  uint32_t consecutive_5xx = 5;
  uint64_t base_ejection_ms = 30000;
  uint32_t max_ejection_percent = 50;
};

struct CircuitBreakerConfig {
  uint32_t max_pending = 1024;
  uint32_t max_requests = 4096;
  // Retry budget: retries in flight across the cluster may not exceed this percentage of its
  // active requests, or min_retry_concurrency, whichever is larger.
  uint32_t retry_budget_percent = 20;
  uint32_t min_retry_concurrency = 3;
};

struct ClusterTls {
  std::string sni;
  std::string ca_file;
  bool verify = true;
};

struct ClusterConfig {
  std::string name;
  std::vector<EndpointConfig> endpoints;
  LbPolicy lb_policy = LbPolicy::RoundRobin;
  std::optional<HashOn> hash_on;
  uint64_t connect_timeout_ms = 1000;
  uint64_t dns_refresh_ms = 30000; // hostname endpoints are resolved again this often
  PoolConfig pool;
  std::optional<HealthCheckConfig> health_check;
  std::optional<OutlierDetectionConfig> outlier_detection;
  CircuitBreakerConfig circuit_breaker;
  std::optional<ClusterTls> tls;
  std::string pointer; // "/clusters/N"
};

struct Config {
  uint32_t workers = 0; // 0 = one per CPU
  AdminConfig admin;
  StartupConfig startup;
  ShutdownConfig shutdown;
  OverloadConfig overload;
  std::vector<ListenerConfig> listeners;
  std::vector<ClusterConfig> clusters;
  std::string path;     // the file it came from (empty for PUT /config)
  std::string base_dir; // folder relative paths resolve against
  std::string raw_json; // the document as loaded, for /config_dump (redacted there)

  const ClusterConfig* findCluster(std::string_view name) const {
    for (const auto& c : clusters) {
      if (c.name == name) {
        return &c;
      }
    }
    return nullptr;
  }
};

// One problem found while loading: "<pointer>: <message>".
struct ConfigError {
  std::string pointer;
  std::string message;
  std::string toString() const { return pointer + ": " + message; }
};

struct LoadResult {
  std::shared_ptr<const Config> config; // null when errors is non-empty
  std::vector<ConfigError> errors;
  std::vector<std::string> warnings;
};

// Parse and validate a config document. base_dir resolves relative paths. Never throws.
// Checks syntax, types, unknown keys, ranges, addresses, duplicate names, and that secrets
// ({"env"}/{"file"}) resolve. Filter "config" objects are not interpreted here (filters validate
// them); the filter type/module existence is checked by the filter registry.
LoadResult parseConfig(std::string_view json_text, const std::string& base_dir);

// Read a file and parse it; a missing or unreadable file is an error with pointer "".
LoadResult loadConfigFile(const std::string& path);

// Parse "host:port" / "[v6]:port". Returns false with a message on error.
bool parseAddress(std::string_view text, Address& out, std::string& error);

// The raw document with every secret replaced by "[redacted]" (api_key, anything written as
// {"env"} or {"file"}, "secret"/"password"/"k" keys inside filter configs, inline oct keys).
std::string redactedDump(const Config& config);

struct EnvOverrideResult {
  std::vector<std::string> warnings;
};
// Applies SLUICE_SHUTDOWN_{PRE_DRAIN,DRAIN,TEARDOWN}_MS. A value that is not a plain decimal
// integer or exceeds one day is ignored with a warning (nothing can overflow), and the SPEC §6
// grace-period warning is added when the phases exceed grace_period_ms.
EnvOverrideResult applyShutdownEnv(ShutdownConfig& shutdown,
                                   const std::function<const char*(const char*)>& getenv_fn);

} // namespace sluice::config
