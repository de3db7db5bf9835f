// Coverage of the built-in taxonomy over data/ai-robots.json: every key of that file that names
// an AI crawler or assistant's User-Agent token must be classified, i.e.
//   - an agent of taxonomy.json lists the key in source.ai_robots, with a provider and a purpose;
//   - a User-Agent that carries the key is tagged as that agent, provider and purpose.
// The only keys left out are those in kExcluded below, each with its reason; they must also be
// documented in taxonomy.json (robots_txt_only or not_ai) and must not be tagged.
//
// When data/ai-robots.json is refreshed and this test fails, tools/ai_taxonomy/new-names.py lists
// the new keys with the file's operator/function text, to classify them in taxonomy.json.

#include "test/filters/ai_agent_tagger/harness.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sluice::testing {
namespace {

using Json = nlohmann::json;

// Keys of ai-robots.json that are deliberately not tagged.
struct Exclusion {
  const char* key;
  const char* reason;
};
constexpr Exclusion kExcluded[] = {
    // Not User-Agent tokens: they exist only in robots.txt and no crawler sends them.
    {"Google-Extended", "robots.txt-only: Google crawls with Googlebot's User-Agent"},
    {"Applebot-Extended", "robots.txt-only: Apple crawls with Applebot's User-Agent"},
    {"Webzio-Extended", "robots.txt-only: controls AI use of what Webz.io's crawlers fetch"},
    {"webzio-extended", "robots.txt-only: lower-case spelling of Webzio-Extended"},
    {"YandexAdditional", "robots.txt-only: the fetching crawler sends YandexAdditionalBot"},
    // User-Agent tokens that ai-robots.json lists but that are not AI crawlers or assistants.
    {"Applebot", "Apple's search crawler; its AI use is governed by Applebot-Extended"},
    {"facebookexternalhit", "Meta's link-preview fetcher, not an AI agent"},
};

// The real User-Agent (crawler-user-agents.json) for the generic words that the taxonomy matches
// only in their own context: "LCC" at the start of the value, "Spider" with its site's address.
const std::map<std::string, std::string> kUserAgentFor = {
    {"LCC", "LCC (+http://corpora.informatik.uni-leipzig.de/crawler_faq.html)"},
    {"Spider", "Mozilla/5.0 (compatible; Spider; +https://www.spider.com/)"},
};

bool hasVersion(const std::string& key) {
  return key.find('/') != std::string::npos ||
         (key.find(' ') != std::string::npos && key.back() >= '0' && key.back() <= '9');
}

// User-Agents that carry `key` the way crawlers send their product token.
std::vector<std::string> userAgentsFor(const std::string& key) {
  if (auto it = kUserAgentFor.find(key); it != kUserAgentFor.end()) {
    return {it->second};
  }
  const std::string product = hasVersion(key) ? key : key + "/1.0";
  return {"Mozilla/5.0 (compatible; " + product + "; +https://example.com/bot)",
          product + " (+https://example.com/bot)"};
}

struct Tag {
  std::string agent, provider, purpose;
};

Tag tagOf(Tagger& t, const std::string& ua) {
  FakeStream s;
  t.run(s, {{"user-agent", ua}});
  return {Tagger::metadata(s, "ai.agent"), Tagger::metadata(s, "ai.provider"),
          Tagger::metadata(s, "ai.purpose")};
}

const std::set<std::string> kPurposes = {"training", "search", "user", "assistant", "other"};

} // namespace

TEST_CASE("ai_agent_tagger: every AI agent of ai-robots.json is classified", "[filter][coverage]") {
  const Json robots = loadJson(sharedDataDir() + "/ai-robots.json");
  REQUIRE(robots.is_object());
  REQUIRE(robots.size() > 100);
  const Json taxonomy = builtinTaxonomyJson();
  REQUIRE(taxonomy.is_object());

  // key -> the taxonomy agent that claims it
  std::map<std::string, const Json*> claimed;
  for (const Json& a : taxonomy["agents"]) {
    if (a.contains("source") && a["source"].contains("ai_robots")) {
      for (const Json& k : a["source"]["ai_robots"]) {
        claimed[k.get<std::string>()] = &a;
      }
    }
  }
  std::set<std::string> documented;
  for (const char* list : {"robots_txt_only", "not_ai"}) {
    for (const Json& e : taxonomy[list]) {
      documented.insert(e["token"].get<std::string>());
    }
  }
  std::map<std::string, const char*> excluded;
  for (const Exclusion& e : kExcluded) {
    excluded[e.key] = e.reason;
  }

  Tagger t(R"({"taxonomy": "builtin"})");
  REQUIRE(t.ok());

  std::vector<std::string> unclassified;
  size_t classified = 0;
  for (auto it = robots.begin(); it != robots.end(); ++it) {
    const std::string& key = it.key();
    INFO("ai-robots.json key \"" << key << "\"");
    if (auto ex = excluded.find(key); ex != excluded.end()) {
      INFO("excluded: " << ex->second);
      CHECK(documented.count(key) == 1); // the taxonomy documents the same decision
      CHECK(claimed.count(key) == 0);
      for (const std::string& ua : userAgentsFor(key)) {
        INFO(ua);
        CHECK(tagOf(t, ua).agent.empty());
      }
      continue;
    }
    auto c = claimed.find(key);
    if (c == claimed.end()) {
      unclassified.push_back(key);
      continue;
    }
    const Json& agent = *c->second;
    const std::string name = agent["agent"].get<std::string>();
    const std::string provider = agent.value("provider", "");
    const std::string purpose = agent.value("purpose", "");
    INFO("agent " << name << ", provider " << provider << ", purpose " << purpose);
    CHECK_FALSE(provider.empty());
    CHECK(kPurposes.count(purpose) == 1);
    for (const std::string& ua : userAgentsFor(key)) {
      INFO("User-Agent: " << ua);
      const Tag tag = tagOf(t, ua);
      CHECK(tag.agent == name);
      CHECK(tag.provider == provider);
      CHECK(tag.purpose == purpose);
    }
    classified++;
  }
  std::string list;
  for (const std::string& k : unclassified) {
    list += "\n  " + k;
  }
  INFO("keys of data/ai-robots.json that no taxonomy agent classifies (see "
       "tools/ai_taxonomy/new-names.py):"
       << list);
  CHECK(unclassified.empty());
  CHECK(classified + excluded.size() == robots.size());
  // Every exclusion is still a key of the data file (a stale entry would hide nothing).
  for (const Exclusion& e : kExcluded) {
    INFO(e.key);
    CHECK(robots.contains(e.key));
  }
}

TEST_CASE("ai_agent_tagger: Mistral's fetcher and indexer are told apart", "[filter][coverage]") {
  Tagger t(R"({"taxonomy": "builtin"})");
  REQUIRE(t.ok());
  // The User-Agent that crawler-user-agents.json records for Le Chat's fetches.
  Tag tag = tagOf(t, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
                     "MistralAI-User/1.0; +https://docs.mistral.ai/robots)");
  CHECK(tag.agent == "MistralAI-User");
  CHECK(tag.provider == "Mistral AI");
  CHECK(tag.purpose == "user");
  // Its search indexer, documented by Mistral AI but in neither list yet.
  tag = tagOf(t, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
                 "MistralAI-Index/1.0; +https://docs.mistral.ai/robots)");
  CHECK(tag.agent == "MistralAI-Index");
  CHECK(tag.provider == "Mistral AI");
  CHECK(tag.purpose == "search");
}

} // namespace sluice::testing
