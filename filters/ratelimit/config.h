#pragma once

// The ratelimit config, parsed once per config load into an immutable value shared by every
// worker. Rule matches are a common::MatchSet (regexes compiled once, per-worker scratch).

#include "filters/common/config_reader.h"
#include "filters/common/request_match.h"
#include "sluice/filter.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::filters::ratelimit {

// What a token bucket is made of. Tokens are counted in units of 1/60000 so that refilling
// (requests_per_minute units per millisecond) is exact integer arithmetic.
struct Limit {
  static constexpr uint64_t kUnitsPerToken = 60000;
  uint32_t burst = 0;               // bucket size in tokens (RateLimit-Limit)
  uint32_t requests_per_minute = 0; // refill rate
};

struct Rule {
  enum class KeyKind { Header, ClientIp, Metadata };
  size_t match = 0; // index in Config::matches
  KeyKind key = KeyKind::ClientIp;
  std::string key_name; // header name (lower case) or metadata key
  Limit limit;
};

struct RedisSettings {
  std::string host; // numeric IPv4 or IPv6 address ("address")
  uint16_t port = 6379;
  std::string cluster; // or: a cluster whose endpoints are Redis servers (picked per connect)
  std::string prefix = "sluice:";
  uint32_t timeout_ms = 50;
  bool deny_on_failure = false; // failure_mode "deny"
};

struct Config {
  static constexpr uint64_t kDefaultMaxKeys = 100000;
  static constexpr uint64_t kMaxBurst = 1000000;
  static constexpr uint64_t kMaxRequestsPerMinute = 60000000;

  // Parses the filter's config; null (with every problem recorded in `reader`) when invalid.
  static std::unique_ptr<Config> parse(sluice_str_t json, common::ConfigReader& reader);

  common::MatchSet matches;
  std::vector<Rule> rules;
  bool response_headers = false;
  uint64_t max_keys = kDefaultMaxKeys;  // local backend: buckets kept per filter instance
  std::unique_ptr<RedisSettings> redis; // null: the local backend
};

// Parses "1.2.3.4:6379", "[::1]:6379" or "localhost:6379" (as 127.0.0.1). False when it does
// not parse; no name is ever resolved (a worker must not block on DNS).
bool parseRedisAddress(const std::string& text, std::string& host, uint16_t& port);

} // namespace sluice::filters::ratelimit
