// Accuracy of the built-in taxonomy over every `instances` User-Agent of
// data/crawler-user-agents.json, against labels derived from the taxonomy's documented
// sources, never from the matcher:
//
//   For each entry E of crawler-user-agents.json:
//   - keys(E): the ai-robots.json keys K that E's `pattern` names. The pattern (without a
//     leading "^"), as an ECMAScript regex ignoring case, must match K + "/" or K + " " from
//     the first character through at least the whole of K ("PerplexityBot\/" names
//     PerplexityBot; "[cC]laude[bB]ot" names ClaudeBot). Patterns std::regex cannot compile
//     name no key.
//   - excluded(K): K is in the taxonomy's robots_txt_only or not_ai list (e.g. Google-Extended,
//     Applebot, facebookexternalhit).
//   - E is an AI agent when E is tagged "ai-crawler", or some key of E is not excluded, or the
//     taxonomy lists E's pattern in an agent's source.crawler_user_agents (a reviewed claim:
//     "Code\/1\." is described there as the GitHub Copilot coding agent, ai-robots.json's
//     "Code"); unless E names keys and every one of them is excluded (the "ai-crawler"-tagged
//     Google-Extended entry is a robots.txt token, so it is not a User-Agent to tag).
//   - The expected (provider, agent) of an AI entry: the taxonomy agent whose
//     source.crawler_user_agents lists E's pattern, else the agent whose source.ai_robots lists
//     a non-excluded key of E.
//   Every instance of E carries E's label.
//
// Reported: precision and recall of "is an AI agent", accuracy of the (provider, agent) label
// over the AI instances, and every misclassified instance. Asserted: precision >= 0.99,
// recall >= 0.97, label accuracy >= 0.97, and no ordinary browser tagged.

#include "test/filters/ai_agent_tagger/harness.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace sluice::testing {
namespace {

using Json = nlohmann::json;

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  return s;
}

std::vector<std::string> namedKeys(const std::string& pattern, const Json& ai_robots,
                                   bool& compiled) {
  std::vector<std::string> keys;
  std::regex re;
  try {
    re = std::regex(pattern.size() > 0 && pattern[0] == '^' ? pattern.substr(1) : pattern,
                    std::regex::ECMAScript | std::regex::icase);
  } catch (const std::regex_error&) {
    compiled = false;
    return keys;
  }
  compiled = true;
  for (auto it = ai_robots.begin(); it != ai_robots.end(); ++it) {
    const std::string& k = it.key();
    for (const char* suffix : {"/", " "}) {
      const std::string text = k + suffix;
      std::smatch m;
      if (std::regex_search(text, m, re, std::regex_constants::match_continuous) &&
          static_cast<size_t>(m.length(0)) >= k.size()) {
        keys.push_back(k);
        break;
      }
    }
  }
  return keys;
}

struct Expected {
  bool ai = false;
  std::string agent; // empty: AI, but no taxonomy agent claims it
  std::string provider;
};

TEST_CASE("ai_agent_tagger: accuracy over crawler-user-agents.json", "[filter][accuracy]") {
  const std::string data = sharedDataDir();
  const Json cua = loadJson(data + "/crawler-user-agents.json");
  const Json ai = loadJson(data + "/ai-robots.json");
  const Json tax = builtinTaxonomyJson();
  REQUIRE(cua.is_array());
  REQUIRE(ai.is_object());
  REQUIRE(tax.is_object());

  std::set<std::string> excluded;
  for (const char* list : {"robots_txt_only", "not_ai"}) {
    for (const Json& e : tax[list]) {
      excluded.insert(lower(e["token"]));
    }
  }
  std::map<std::string, const Json*> by_pattern;
  std::map<std::string, const Json*> by_key;
  for (const Json& a : tax["agents"]) {
    for (const Json& p : a["source"].value("crawler_user_agents", Json::array())) {
      by_pattern[p.get<std::string>()] = &a;
    }
    for (const Json& k : a["source"].value("ai_robots", Json::array())) {
      by_key[k.get<std::string>()] = &a;
    }
  }

  Tagger t("{}");
  REQUIRE(t.ok());
  size_t tp = 0;
  size_t fp = 0;
  size_t fn = 0;
  size_t tn = 0;
  size_t ai_total = 0;
  size_t label_ok = 0;
  size_t uncompiled = 0;
  std::vector<std::string> wrong;
  for (const Json& e : cua) {
    const std::string pattern = e["pattern"];
    bool compiled = true;
    const std::vector<std::string> keys = namedKeys(pattern, ai, compiled);
    uncompiled += compiled ? 0 : 1;
    const Json tags = e.value("tags", Json::array());
    const bool tagged_ai = std::find(tags.begin(), tags.end(), "ai-crawler") != tags.end();
    const bool any_kept = std::any_of(
        keys.begin(), keys.end(), [&](const std::string& k) { return !excluded.count(lower(k)); });
    Expected x;
    x.ai =
        (tagged_ai || any_kept || by_pattern.count(pattern) != 0) && !(!keys.empty() && !any_kept);
    if (x.ai) {
      const Json* agent = nullptr;
      if (auto it = by_pattern.find(pattern); it != by_pattern.end()) {
        agent = it->second;
      }
      for (const std::string& k : keys) {
        if (agent == nullptr && !excluded.count(lower(k)) && by_key.count(k)) {
          agent = by_key[k];
        }
      }
      if (agent != nullptr) {
        x.agent = (*agent)["agent"];
        x.provider = (*agent)["provider"];
      }
    }
    for (const Json& inst : e["instances"]) {
      const std::string ua = inst;
      FakeStream s;
      t.run(s, {{"user-agent", ua}});
      const std::string agent = Tagger::metadata(s, "ai.agent");
      const std::string provider = Tagger::metadata(s, "ai.provider");
      const bool got = !agent.empty();
      if (x.ai) {
        ai_total++;
        got ? tp++ : fn++;
        if (got && agent == x.agent && provider == x.provider) {
          label_ok++;
          continue;
        }
      } else {
        got ? fp++ : tn++;
        if (!got) {
          continue;
        }
      }
      wrong.push_back((x.ai ? "expected " + (x.agent.empty() ? "?" : x.provider + "/" + x.agent)
                            : std::string("expected not AI")) +
                      ", got " + (got ? provider + "/" + agent : std::string("not AI")) +
                      " [pattern " + pattern + "]: " + ua);
    }
  }
  size_t browsers_tagged = 0;
  for (const std::string& ua : browserUserAgents()) {
    if (!t.agentOf(ua).empty()) {
      browsers_tagged++;
      wrong.push_back("browser tagged: " + ua);
    }
  }

  const double precision =
      tp + fp == 0 ? 0 : static_cast<double>(tp) / static_cast<double>(tp + fp);
  const double recall = tp + fn == 0 ? 0 : static_cast<double>(tp) / static_cast<double>(tp + fn);
  const double label_accuracy =
      ai_total == 0 ? 0 : static_cast<double>(label_ok) / static_cast<double>(ai_total);
  std::printf("ai_agent_tagger accuracy over %zu crawler-user-agents.json instances "
              "(%zu labelled AI; %zu patterns std::regex could not compile)\n",
              tp + fp + fn + tn, ai_total, uncompiled);
  std::printf("  is-AI: TP %zu  FP %zu  FN %zu  TN %zu  precision %.4f  recall %.4f\n", tp, fp, fn,
              tn, precision, recall);
  std::printf("  (provider, agent) label accuracy over AI instances: %zu/%zu = %.4f\n", label_ok,
              ai_total, label_accuracy);
  std::printf("  browsers tagged: %zu of %zu\n", browsers_tagged, browserUserAgents().size());
  std::printf("  misclassified (%zu):\n", wrong.size());
  for (const std::string& w : wrong) {
    std::printf("    %s\n", w.c_str());
  }
  std::fflush(stdout);

  CHECK(tp + fp + fn + tn >= 2000);
  CHECK(ai_total >= 100);
  CHECK(precision >= 0.99);
  CHECK(recall >= 0.97);
  CHECK(label_accuracy >= 0.97);
  CHECK(browsers_tagged == 0);
}

} // namespace
} // namespace sluice::testing
