#pragma once

// The cors config, parsed once per config load into an immutable value shared by every worker.
// Origin regexes are compiled into one Hyperscan database; each worker scans with its own
// scratch (Config::newScratch).

#include "filters/common/config_reader.h"
#include "sluice/filter.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <hs/hs.h>

namespace sluice::filters::cors {

class Config {
public:
  static constexpr uint64_t kMaxAgeLimitS = 86400; // what the most lenient browser honours

  // Parses the filter's config text; null (with every problem recorded in `reader`, by JSON
  // pointer) when it is invalid.
  static std::unique_ptr<Config> parse(sluice_str_t json, common::ConfigReader& reader);
  ~Config();
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;

  // Whether `origin` may make CORS requests. `scratch` is the worker's (may be null when there
  // are no regexes).
  bool originAllowed(std::string_view origin, hs_scratch_t* scratch) const;
  // Whether the answer depends on the Origin (anything but a bare "*" without credentials):
  // then every response carries `Vary: Origin`.
  bool variesByOrigin() const { return !wildcard_ || allow_credentials_; }
  // "*" when any origin is allowed and credentials are off; otherwise the origin is echoed.
  bool answersWildcard() const { return wildcard_ && !allow_credentials_; }

  hs_scratch_t* newScratch() const;

  bool allowCredentials() const { return allow_credentials_; }
  const std::string& allowMethods() const { return allow_methods_; }   // joined with ", "
  const std::string& allowHeaders() const { return allow_headers_; }   // "" = none
  const std::string& exposeHeaders() const { return expose_headers_; } // "" = none
  const std::string& maxAge() const { return max_age_; }               // "" = not sent

private:
  Config() = default;

  std::vector<std::string> origins_;
  std::unordered_set<std::string_view> origin_set_; // views into origins_
  bool wildcard_ = false;
  hs_database_t* regex_db_ = nullptr;
  hs_scratch_t* scratch_proto_ = nullptr;
  bool allow_credentials_ = false;
  std::string allow_methods_;
  std::string allow_headers_;
  std::string expose_headers_;
  std::string max_age_;
};

} // namespace sluice::filters::cors
