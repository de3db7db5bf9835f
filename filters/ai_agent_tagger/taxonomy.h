#pragma once

// The AI-agent taxonomy (filters/ai_agent_tagger/taxonomy.json and files in the same form) and
// the classifier built from it: one Hyperscan database over every token and pattern of every
// agent, compiled once per config load. Classification is allocation-free and uses a
// per-worker scratch.

#include "filters/common/config_reader.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <hs/hs.h>

namespace sluice::filters::ai_agent_tagger {

using common::ConfigReader;
using common::Json;

struct Agent {
  std::string name;
  std::string provider;
  std::string purpose; // training | search | user | assistant | other
  uint32_t precedence = 100;
  std::vector<std::string> tokens;   // literal, caseless, on token boundaries
  std::vector<std::string> patterns; // Hyperscan regexes as written
};

struct Taxonomy {
  std::vector<Agent> agents;
  std::vector<std::string> robots_txt_only;   // documented non-User-Agent tokens
  std::vector<std::string> not_ai;            // documented non-AI tokens
  size_t index(std::string_view agent) const; // SIZE_MAX if absent
};

// Parses a taxonomy document. Errors go to `reader` with JSON pointers inside the document.
bool parseTaxonomy(std::string_view text, Taxonomy& out, ConfigReader& reader);

// The Hyperscan expression for a literal token: the token (every byte escaped), ignoring case,
// with a token boundary on either side (start/end or a byte that is not [A-Za-z0-9_.-]).
std::string tokenExpression(std::string_view token);

class Classifier {
public:
  static constexpr int kNone = -1;

  Classifier() = default;
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // Compiles the database for `taxonomy` (kept by reference: it must outlive this). Errors go to
  // `reader` at the JSON pointer of the offending token or pattern.
  bool build(const Taxonomy& taxonomy, ConfigReader& reader);

  // A scratch for one thread (free with hs_free_scratch); nullptr on failure.
  hs_scratch_t* newScratch() const;

  // The index of the agent that `user_agent` names, or kNone. The highest precedence wins; ties
  // go to the match that ends first, then to the earlier agent. Allocation-free.
  int classify(std::string_view user_agent, hs_scratch_t* scratch) const;

  const Taxonomy& taxonomy() const { return *taxonomy_; }

private:
  const Taxonomy* taxonomy_ = nullptr;
  hs_database_t* db_ = nullptr;
  hs_scratch_t* proto_ = nullptr;
};

} // namespace sluice::filters::ai_agent_tagger
