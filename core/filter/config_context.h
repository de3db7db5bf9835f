#pragma once

// What sluice_config_ctx_t points to while a filter parses its config.

#include "core/config/config.h"
#include "core/filter/config_view.h"

#include <memory>
#include <string>
#include <vector>

namespace sluice::filter {

struct ConfigContext {
  const config::Config* config = nullptr;
  std::string pointer; // JSON pointer of the filter's "config"
  std::string name;    // instance name (NUL-terminated via std::string)
  std::vector<config::ConfigError> errors;
  // Views made by sluice_host_config_view: freed with the context, when config-new returns.
  std::vector<std::unique_ptr<ConfigView>> views;
};

} // namespace sluice::filter
