#pragma once

// The ai_agent_tagger config, parsed once per config load into an immutable value shared by
// every worker: the taxonomy, its compiled classifier, the request headers to set and the agents
// to block.

#include "filters/ai_agent_tagger/taxonomy.h"
#include "filters/common/config_reader.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::filters::ai_agent_tagger {

// The checked-in taxonomy.json, embedded at build time (generated source).
std::string_view builtinTaxonomy();

struct Config {
  static constexpr uint64_t kMaxTaxonomyBytes = 16u << 20;

  std::unique_ptr<Taxonomy> taxonomy;
  std::unique_ptr<Classifier> classifier;
  // Request headers to set (lower case; empty: not set). Incoming copies are always removed.
  std::string agent_header;
  std::string provider_header;
  std::string purpose_header;
  std::vector<bool> blocked; // per taxonomy agent
  uint32_t block_status = 403;
};

// Resolves a path from the config against the config file's folder; nullopt if it cannot.
using PathResolver = std::function<std::optional<std::string>(std::string_view)>;

// Parses the filter's config JSON. Every problem goes to `reader` by JSON pointer; returns null
// when there was any. Reads the taxonomy file, if one is named (config time only).
std::unique_ptr<Config> parseConfig(sluice_str_t json, const PathResolver& resolve,
                                    common::ConfigReader& reader);

} // namespace sluice::filters::ai_agent_tagger
