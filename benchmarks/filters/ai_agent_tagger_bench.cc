// BM_AiAgentTagger_*: classifying real User-Agent strings with the built-in taxonomy.
//   Classify         the filter's way: one Hyperscan database over every token and pattern
//   NaivePerAgentHs  one Hyperscan database per agent, each scanned in taxonomy order
//   NaiveStdRegex    one std::regex per agent, each searched in taxonomy order
//   Classify64KiB    one 64 KiB User-Agent of printable noise (the hostile case)
//   ConfigLoad       parse + validate + compile the built-in taxonomy (once per config load)
// The naive variants keep the filter's semantics (every agent is tried; the highest precedence
// wins), so all three return the same answers; the setup checks that. The corpus is every
// `instances` User-Agent of data/crawler-user-agents.json (2,116: crawlers and tools of
// every kind, 151 of them AI agents) plus 19 browser User-Agents, visited round-robin.
#include "filters/ai_agent_tagger/config.h"
#include "filters/ai_agent_tagger/taxonomy.h"
#include "test/filters/ai_agent_tagger/browsers.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace {

using namespace sluice::filters::ai_agent_tagger;

const std::vector<std::string>& kBrowsers = sluice::testing::browserUserAgents();

std::string dataDir() {
  if (const char* env = std::getenv("SLUICE_DATA_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  const std::filesystem::path here(__FILE__); // <source>/benchmarks/filters/this file
  return (here.parent_path().parent_path().parent_path() / "data").string();
}

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  std::ifstream in(dataDir() + "/crawler-user-agents.json");
  std::stringstream s;
  s << in.rdbuf();
  const nlohmann::json doc = nlohmann::json::parse(s.str(), nullptr, false);
  if (doc.is_array()) {
    for (const auto& e : doc) {
      for (const auto& i : e["instances"]) {
        out.push_back(i.get<std::string>());
      }
    }
  }
  out.insert(out.end(), kBrowsers.begin(), kBrowsers.end());
  return out;
}

struct Fixture {
  Taxonomy taxonomy;
  Classifier classifier;
  std::vector<std::string> uas = corpus();
  bool ok = false;

  Fixture() {
    sluice::filters::common::ConfigReader r;
    ok = parseTaxonomy(builtinTaxonomy(), taxonomy, r) && classifier.build(taxonomy, r) &&
         uas.size() > kBrowsers.size();
  }
  static Fixture& get() {
    static Fixture f;
    return f;
  }
};

// Naive: one Hyperscan database per agent.
struct PerAgentHs {
  std::vector<hs_database_t*> dbs;
  hs_scratch_t* scratch = nullptr;

  explicit PerAgentHs(const Taxonomy& t) {
    for (const Agent& a : t.agents) {
      std::vector<std::string> exprs;
      std::vector<unsigned> flags;
      for (const std::string& tok : a.tokens) {
        exprs.push_back(tokenExpression(tok));
        flags.push_back(HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
      }
      for (const std::string& p : a.patterns) {
        exprs.push_back(p);
        flags.push_back(HS_FLAG_SINGLEMATCH);
      }
      std::vector<const char*> c;
      for (const std::string& e : exprs) {
        c.push_back(e.c_str());
      }
      std::vector<unsigned> ids(c.size(), 0);
      hs_database_t* db = nullptr;
      hs_compile_error_t* err = nullptr;
      if (hs_compile_multi(c.data(), flags.data(), ids.data(), static_cast<unsigned>(c.size()),
                           HS_MODE_BLOCK, nullptr, &db, &err) != HS_SUCCESS) {
        hs_free_compile_error(err);
        std::abort();
      }
      hs_alloc_scratch(db, &scratch);
      dbs.push_back(db);
    }
  }
  ~PerAgentHs() {
    for (hs_database_t* d : dbs) {
      hs_free_database(d);
    }
    hs_free_scratch(scratch);
  }

  int classify(const Taxonomy& t, const std::string& ua) const {
    int best = Classifier::kNone;
    for (size_t i = 0; i < dbs.size(); i++) {
      bool hit = false;
      hs_scan(
          dbs[i], ua.data(), static_cast<unsigned>(ua.size()), 0, scratch,
          [](unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) {
            *static_cast<bool*>(ctx) = true;
            return 1;
          },
          &hit);
      if (hit && (best == Classifier::kNone ||
                  t.agents[i].precedence > t.agents[static_cast<size_t>(best)].precedence)) {
        best = static_cast<int>(i);
      }
    }
    return best;
  }
};

// Naive: one std::regex per agent (alternation of its token and pattern expressions).
struct PerAgentStdRegex {
  std::vector<std::regex> res;

  explicit PerAgentStdRegex(const Taxonomy& t) {
    for (const Agent& a : t.agents) {
      std::vector<std::string> parts;
      bool icase = !a.tokens.empty();
      for (const std::string& tok : a.tokens) {
        parts.push_back(tokenExpression(tok));
      }
      for (const std::string& p : a.patterns) {
        const bool ci = p.rfind("(?i)", 0) == 0;
        icase = icase || ci;
        parts.push_back(ci ? p.substr(4) : p);
      }
      std::string alt;
      for (const std::string& part : parts) {
        if (!alt.empty()) {
          alt.push_back('|');
        }
        alt.append(part);
      }
      auto flags = std::regex::ECMAScript | std::regex::optimize;
      res.emplace_back(alt, icase ? flags | std::regex::icase : flags);
    }
  }

  int classify(const Taxonomy& t, const std::string& ua) const {
    int best = Classifier::kNone;
    for (size_t i = 0; i < res.size(); i++) {
      if (std::regex_search(ua, res[i]) &&
          (best == Classifier::kNone ||
           t.agents[i].precedence > t.agents[static_cast<size_t>(best)].precedence)) {
        best = static_cast<int>(i);
      }
    }
    return best;
  }
};

void setCounters(benchmark::State& state, size_t tagged, size_t n) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["tagged_fraction"] =
      n == 0 ? 0 : static_cast<double>(tagged) / static_cast<double>(n);
}

void BM_AiAgentTagger_Classify(benchmark::State& state) {
  Fixture& f = Fixture::get();
  if (!f.ok) {
    state.SkipWithError("no taxonomy or corpus");
    return;
  }
  hs_scratch_t* scratch = f.classifier.newScratch();
  size_t i = 0;
  size_t tagged = 0;
  for (auto _ : state) {
    const int r = f.classifier.classify(f.uas[i], scratch);
    tagged += r != Classifier::kNone ? 1 : 0;
    benchmark::DoNotOptimize(r);
    i = i + 1 == f.uas.size() ? 0 : i + 1;
  }
  setCounters(state, tagged, static_cast<size_t>(state.iterations()));
  hs_free_scratch(scratch);
}
BENCHMARK(BM_AiAgentTagger_Classify);

// The naive approaches, one pattern per agent tried in turn: first checked against the filter's
// classifier over the whole corpus (the "mismatches" counter), then timed.
template <typename Naive> void runNaive(benchmark::State& state) {
  Fixture& f = Fixture::get();
  if (!f.ok) {
    state.SkipWithError("no taxonomy or corpus");
    return;
  }
  Naive naive(f.taxonomy);
  hs_scratch_t* scratch = f.classifier.newScratch();
  size_t mismatches = 0;
  for (const std::string& ua : f.uas) {
    mismatches += naive.classify(f.taxonomy, ua) != f.classifier.classify(ua, scratch) ? 1 : 0;
  }
  hs_free_scratch(scratch);
  size_t i = 0;
  size_t tagged = 0;
  for (auto _ : state) {
    const int r = naive.classify(f.taxonomy, f.uas[i]);
    tagged += r != Classifier::kNone ? 1 : 0;
    benchmark::DoNotOptimize(r);
    i = i + 1 == f.uas.size() ? 0 : i + 1;
  }
  setCounters(state, tagged, static_cast<size_t>(state.iterations()));
  state.counters["mismatches"] = static_cast<double>(mismatches);
}

void BM_AiAgentTagger_NaivePerAgentHs(benchmark::State& state) {
  runNaive<PerAgentHs>(state);
}
BENCHMARK(BM_AiAgentTagger_NaivePerAgentHs);

void BM_AiAgentTagger_NaiveStdRegex(benchmark::State& state) {
  runNaive<PerAgentStdRegex>(state);
}
BENCHMARK(BM_AiAgentTagger_NaiveStdRegex);

// Hostile input: a 64 KiB User-Agent (printable noise without any token). The scan is linear.
void BM_AiAgentTagger_Classify64KiB(benchmark::State& state) {
  Fixture& f = Fixture::get();
  if (!f.ok) {
    state.SkipWithError("no taxonomy");
    return;
  }
  hs_scratch_t* scratch = f.classifier.newScratch();
  std::string ua;
  uint32_t x = 12345;
  while (ua.size() < 65536) {
    x = x * 1103515245u + 12345u;
    ua.push_back(static_cast<char>(' ' + (x >> 16) % 95));
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.classifier.classify(ua, scratch));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 65536);
  hs_free_scratch(scratch);
}
BENCHMARK(BM_AiAgentTagger_Classify64KiB);

void BM_AiAgentTagger_ConfigLoad(benchmark::State& state) {
  for (auto _ : state) {
    sluice::filters::common::ConfigReader r;
    Taxonomy t;
    Classifier c;
    const bool ok = parseTaxonomy(builtinTaxonomy(), t, r) && c.build(t, r);
    benchmark::DoNotOptimize(ok);
  }
}
BENCHMARK(BM_AiAgentTagger_ConfigLoad)->Unit(benchmark::kMillisecond);

} // namespace
