#pragma once

// What sluice_config_ctx_t points to while a filter parses its config.

#include "core/config/config.h"

#include <string>
#include <vector>

namespace sluice::filter {

struct ConfigContext {
  const config::Config* config = nullptr;
  std::string pointer; // JSON pointer of the filter's "config"
  std::string name;    // instance name (NUL-terminated via std::string)
  std::vector<config::ConfigError> errors;
};

} // namespace sluice::filter
