// The ai_agent_tagger classifier (filters/ai_agent_tagger/taxonomy.*): the built-in taxonomy
// compiled once into its Hyperscan database, then arbitrary User-Agent values classified the
// way a worker does it (one scratch, reused).

#include "filters/ai_agent_tagger/config.h"
#include "filters/ai_agent_tagger/taxonomy.h"

#include <cstdint>
#include <string_view>

namespace tagger = sluice::filters::ai_agent_tagger;

namespace {

struct Built {
  tagger::Taxonomy taxonomy;
  tagger::Classifier classifier;
  hs_scratch_t* scratch = nullptr;
  Built() {
    sluice::filters::common::ConfigReader reader;
    if (!tagger::parseTaxonomy(tagger::builtinTaxonomy(), taxonomy, reader) ||
        !classifier.build(taxonomy, reader) || !reader.ok()) {
      __builtin_trap(); // the built-in taxonomy must compile
    }
    scratch = classifier.newScratch();
    if (scratch == nullptr) {
      __builtin_trap();
    }
  }
  ~Built() { hs_free_scratch(scratch); }
};

Built& built() {
  static Built b;
  return b;
}

} // namespace

// Compiling the taxonomy takes tens of seconds under ASan: done here, outside libFuzzer's
// per-input timeout (the replay binary builds it on the first input instead).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  built();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Built& b = built();
  std::string_view ua(reinterpret_cast<const char*>(data), size);
  int agent = b.classifier.classify(ua, b.scratch);
  if (agent != tagger::Classifier::kNone) {
    if (agent < 0 || static_cast<size_t>(agent) >= b.taxonomy.agents.size()) {
      __builtin_trap();
    }
    const tagger::Agent& a = b.taxonomy.agents[static_cast<size_t>(agent)];
    volatile size_t n = a.name.size() + a.provider.size() + a.purpose.size();
    (void)n;
  }
  return 0;
}
