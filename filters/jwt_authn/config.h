#pragma once

// The jwt_authn config, parsed once on the main thread into an immutable structure that every
// worker reads: providers (issuer, audiences, algorithms, key source, where the token is, what
// is forwarded) and rules (first match wins).

#include "filters/common/config_reader.h"
#include "filters/common/request_match.h"
#include "filters/jwt_authn/jwks.h"
#include "sluice/filter.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::filters::jwt_authn {

// Tokens longer than this are rejected as malformed before any decoding.
constexpr size_t kMaxTokenBytes = 8192;

struct TokenHeader {
  std::string name;   // lower case
  std::string prefix; // compared case-insensitively; empty: the whole value is the token
};

struct ClaimToHeader {
  std::string claim;             // as written ("sub", "realm.role")
  std::vector<std::string> path; // the dotted path split, for nested claims
  std::string header;            // lower case
};

struct RemoteJwks {
  std::string cluster;
  std::string path = "/.well-known/jwks.json";
  uint64_t cache_ms = 300000;
};

struct Provider {
  std::string name;
  std::string realm_header_missing;   // WWW-Authenticate for a missing token
  std::string realm_header_invalid;   // ... for an invalid one (401)
  std::string realm_header_forbidden; // ... for a valid token with the wrong audience (403)
  bool has_issuer = false;
  std::string issuer;
  std::vector<std::string> audiences;        // empty: not checked
  uint32_t algorithms = 0;                   // algBit() mask
  std::shared_ptr<const KeySet> static_keys; // file / inline
  bool remote = false;
  RemoteJwks jwks;
  std::vector<TokenHeader> from_headers;
  std::vector<std::string> from_query;
  double clock_skew_s = 60;
  std::string forward_payload_header; // lower case, empty: none
  std::vector<ClaimToHeader> claim_to_headers;
  // Headers other providers set and this one does not: removed when this provider verifies.
  std::vector<std::string> strip_others;
};

struct Rule {
  size_t match = 0;  // index into Config::matches
  int provider = -1; // -1: no `requires`, the request passes untouched
};

struct Config {
  std::vector<Provider> providers;
  std::vector<Rule> rules;
  common::MatchSet matches;
  size_t token_cache_entries = 1024;
  // Every header a provider sets (payload and claim headers): removed from requests that pass
  // without a verified token, so an upstream can trust them.
  std::vector<std::string> strip_unverified;
};

// Parses the filter config. Errors go to `reader` (JSON pointers relative to the config);
// returns null when there are any.
std::unique_ptr<Config> parseConfig(const sluice_host_t* host, sluice_config_ctx_t* ctx,
                                    sluice_str_t json, common::ConfigReader& reader);

} // namespace sluice::filters::jwt_authn
