// ai_agent_tagger through its C ABI on the fake host: every taxonomy agent, specificity, token
// boundaries, non-AI User-Agents, spoofed tag headers, blocking, metrics, bad input and config
// errors.

#include "test/filters/ai_agent_tagger/harness.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sluice::testing {
namespace {

using Json = nlohmann::json;

// Pattern-only agents without an instance in crawler-user-agents.json: User-Agents in the form
// the product sends (VS Code and Cursor are Electron apps: "<App>/<version> Chrome/...").
const std::map<std::string, std::vector<std::string>> kExtraExamples = {
    {"Code",
     {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Code/1.96.2 Chrome/128.0.6613.186 Electron/32.2.6 Safari/537.36"}},
    {"Cursor",
     {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Cursor/0.44.11 Chrome/128.0.6613.186 Electron/32.2.6 Safari/537.36"}},
};

// Instances of an agent's crawler-user-agents.json entries that are not that agent: the entry's
// pattern matches inside another product token.
const std::map<std::string, std::string> kNotTheAgent = {
    {"Mozilla/5.0 (compatible; Alexabot/1.0; +http://www.alexa.com/help/certifyscan; "
     "certifyscan@alexa.com)",
     "Alexa's Alexabot; the entry's pattern \"exabot\" matches inside it"},
    {"Mozilla/5.0 (compatible; Exabot-Images/3.0; +http://www.exabot.com/go/robot)",
     "Exabot-Images is another product token than ExaBot"},
};

TEST_CASE("ai_agent_tagger: every taxonomy agent is recognised", "[filter]") {
  Tagger t("{}");
  REQUIRE(t.ok());
  const Json tax = builtinTaxonomyJson();
  REQUIRE(tax.is_object());
  const Json cua = loadJson(sharedDataDir() + "/crawler-user-agents.json");
  REQUIRE(cua.is_array());
  size_t real = 0;
  size_t synthesized = 0;
  for (const Json& a : tax["agents"]) {
    const std::string name = a["agent"];
    std::vector<std::string> examples;
    // Real User-Agents: the instances of the crawler-user-agents.json entries the agent names.
    for (const Json& src : a["source"].value("crawler_user_agents", Json::array())) {
      for (const Json& e : cua) {
        if (e["pattern"] == src) {
          for (const Json& i : e["instances"]) {
            if (kNotTheAgent.count(i.get<std::string>()) == 0) {
              examples.push_back(i);
              real++;
            }
          }
        }
      }
    }
    // Each token as a product token in a typical crawler User-Agent.
    for (const Json& tok : a.value("tokens", Json::array())) {
      examples.push_back("Mozilla/5.0 (compatible; " + tok.get<std::string>() +
                         "/1.0; +https://example.com/bot)");
      synthesized++;
    }
    if (auto it = kExtraExamples.find(name); it != kExtraExamples.end()) {
      examples.insert(examples.end(), it->second.begin(), it->second.end());
    }
    INFO("agent " << name);
    REQUIRE(!examples.empty());
    for (const std::string& ua : examples) {
      INFO("User-Agent: " << ua);
      FakeStream s;
      t.run(s, {{"user-agent", ua}});
      CHECK(Tagger::metadata(s, "ai.agent") == name);
      CHECK(Tagger::metadata(s, "ai.provider") == a["provider"].get<std::string>());
      CHECK(Tagger::metadata(s, "ai.purpose") == a["purpose"].get<std::string>());
    }
  }
  CHECK(real >= 100);
  CHECK(synthesized >= tax["agents"].size() - 12);
}

TEST_CASE("ai_agent_tagger: the most specific agent wins", "[filter]") {
  Tagger t("{}");
  REQUIRE(t.ok());
  SECTION("OpenAI agents over the generic OpenAI fallback") {
    CHECK(t.agentOf("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
                    "OAI-SearchBot/1.0; +https://openai.com/searchbot") == "OAI-SearchBot");
    CHECK(t.agentOf("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
                    "ChatGPT-User/1.0; +https://openai.com/bot") == "ChatGPT-User");
    CHECK(t.agentOf("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
                    "GPTBot/1.2; +https://openai.com/gptbot)") == "GPTBot");
    // The fallback itself: an OpenAI address or the bare word, and nothing more specific.
    CHECK(t.agentOf("Mozilla/5.0 (compatible; +https://openai.com/)") == "OpenAI");
    CHECK(t.agentOf("OpenAI/1.0") == "OpenAI");
    // Order in the User-Agent does not matter for precedence.
    CHECK(t.agentOf("OpenAI ChatGPT-User/1.0") == "ChatGPT-User");
  }
  SECTION("Claude-User fetching for claude-code is Claude-User") {
    CHECK(t.agentOf("Claude-User (claude-code/2.1.86; +https://support.anthropic.com/)") ==
          "Claude-User");
    CHECK(t.agentOf("claude-code/2.1.86") == "Claude-Code");
  }
  SECTION("hyphenated variants are their own agents") {
    CHECK(t.agentOf("Mozilla/5.0 (compatible; GoogleOther)") == "GoogleOther");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; GoogleOther-Image/1.0)") == "GoogleOther-Image");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; GoogleOther-Video/1.0)") == "GoogleOther-Video");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; Google-CloudVertexBot)") == "Google-CloudVertexBot");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; CloudVertexBot)") == "CloudVertexBot");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; Google-NotebookLM)") == "Google-NotebookLM");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; NotebookLM)") == "NotebookLM");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; AI2Bot-DeepResearchEval)") ==
          "AI2Bot-DeepResearchEval");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; Ai2Bot-Dolma)") == "Ai2Bot-Dolma");
    CHECK(t.agentOf("Mozilla/5.0 (compatible; AI2Bot)") == "AI2Bot");
  }
  SECTION("case-insensitive tokens, merged spellings") {
    CHECK(t.agentOf("Meta-ExternalAgent/1.1") == "meta-externalagent");
    CHECK(t.agentOf("meta-externalagent/1.1") == "meta-externalagent");
    CHECK(t.agentOf("gptbot/1.0") == "GPTBot");
    CHECK(t.agentOf("Terra Cotta https://ceramic.ai") == "TerraCotta");
  }
}

TEST_CASE("ai_agent_tagger: precedence and ties in a custom taxonomy", "[filter]") {
  TempDir dir;
  const std::string doc = R"({"version": 1, "agents": [
    {"agent": "Generic", "provider": "P", "purpose": "other", "precedence": 10,
     "tokens": ["Acme"], "source": {"note": "test"}},
    {"agent": "First", "provider": "P", "purpose": "user", "tokens": ["AcmeUser"],
     "source": {"note": "test"}},
    {"agent": "Second", "provider": "P", "purpose": "search", "tokens": ["AcmeSearch"],
     "source": {"note": "test"}},
    {"agent": "Strong", "provider": "Q", "purpose": "training", "precedence": 500,
     "patterns": ["[Ss]trong[0-9]+"], "source": {"note": "test"}}]})";
  dir.write("tax.json", doc);
  Tagger t(R"({"taxonomy": {"file": "tax.json"}})", dir.path());
  REQUIRE(t.ok());
  CHECK(t.agentOf("Acme/1") == "Generic");
  CHECK(t.agentOf("Acme AcmeUser/1") == "First");
  CHECK(t.agentOf("AcmeSearch/1 AcmeUser/1") == "Second"); // same precedence: first to end wins
  CHECK(t.agentOf("AcmeUser/1 AcmeSearch/1") == "First");
  CHECK(t.agentOf("AcmeUser/1 strong42") == "Strong");
  CHECK(t.agentOf("AcmeUserX/1") == "");
}

TEST_CASE("ai_agent_tagger: tokens match only on token boundaries", "[filter]") {
  Tagger t("{}");
  REQUIRE(t.ok());
  const char* const kNoMatch[] = {
      "Mozilla/5.0 (compatible; xGPTBot/1.0)",
      "Mozilla/5.0 (compatible; GPTBotx/1.0)",
      "Mozilla/5.0 (compatible; MyClaudeBot/1.0)",
      "Mozilla/5.0 (compatible; ClaudeBotanist/1.0)",
      "Mozilla/5.0 (compatible; CCBot2/1.0)",
      "Mozilla/5.0 (compatible; Not-GPTBot/1.0)",
      "Mozilla/5.0 (compatible; GPTBot_clone/1.0)",
      "Mozilla/5.0 (compatible; fetcher; +https://www.cursor.com/)",
      "crawler4j (http://code.google.com/p/crawler4j/)",
      "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
      "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
      "Mozilla/5.0 (compatible; Operator; +https://example.com)", // generic word, no version
      "Mozilla/5.0 (compatible; my-openai.com-client/1.0)",
  };
  for (const char* ua : kNoMatch) {
    INFO(ua);
    CHECK(t.agentOf(ua) == "");
  }
}

TEST_CASE("ai_agent_tagger: browsers, search engines and link previews are not AI agents",
          "[filter]") {
  Tagger t(R"({"request_headers": {"agent": "x-ai-agent"}})");
  REQUIRE(t.ok());
  std::vector<std::string> uas = browserUserAgents();
  const char* const kBots[] = {
      "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
      "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
      "Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
      "+http://www.google.com/bot.html)",
      "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
      "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
      "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
      "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
      "Twitterbot/1.0",
      "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
      "Slackbot 1.0 (+https://api.slack.com/robots)",
      "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
      "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
      "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
      "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
      "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
      // robots.txt-only tokens are never sent by a real crawler; a UA claiming one is not tagged.
      "Mozilla/5.0 (compatible; Google-Extended/1.0; +http://www.google.com/bot.html)",
      "Mozilla/5.0 (compatible; Applebot-Extended/1.0)",
      "curl/8.5.0",
      "python-requests/2.31.0",
      "Go-http-client/1.1",
  };
  uas.insert(uas.end(), std::begin(kBots), std::end(kBots));
  for (const std::string& ua : uas) {
    INFO(ua);
    FakeStream s;
    CHECK(t.run(s, {{"user-agent", ua}}) == SLUICE_STATUS_CONTINUE);
    CHECK(s.metadata.empty());
    CHECK(Tagger::headers(s, "x-ai-agent").empty());
  }
  CHECK(t.host.metric("sluice_ai_agent_requests_total") == 0);
}

TEST_CASE("ai_agent_tagger: results go to metadata, headers and the counter", "[filter]") {
  Tagger t(R"({"request_headers": {"agent": "X-AI-Agent", "provider": "x-ai-provider",
               "purpose": "x-ai-purpose"}})");
  REQUIRE(t.ok());
  const std::string gptbot = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
                             "GPTBot/1.0; +https://openai.com/gptbot)";
  FakeStream s;
  CHECK(t.run(s, {{"user-agent", gptbot}}) == SLUICE_STATUS_CONTINUE);
  CHECK(Tagger::metadata(s, "ai.provider") == "OpenAI");
  CHECK(Tagger::metadata(s, "ai.agent") == "GPTBot");
  CHECK(Tagger::metadata(s, "ai.purpose") == "training");
  CHECK(Tagger::headers(s, "x-ai-agent") == std::vector<std::string>{"GPTBot"});
  CHECK(Tagger::headers(s, "x-ai-provider") == std::vector<std::string>{"OpenAI"});
  CHECK(Tagger::headers(s, "x-ai-purpose") == std::vector<std::string>{"training"});
  CHECK(s.local_replies.empty());

  // One counter instance per agent, defined at config load, labelled {provider, agent}.
  const size_t agents = builtinTaxonomyJson()["agents"].size();
  size_t defined = 0;
  double gptbot_count = -1;
  for (const FakeMetric& m : t.host.metrics()) {
    if (m.name != "sluice_ai_agent_requests_total") {
      continue;
    }
    defined++;
    CHECK(m.type == SLUICE_METRIC_COUNTER);
    REQUIRE(m.labels.size() == 2);
    CHECK(m.labels[0].first == "provider");
    CHECK(m.labels[1].first == "agent");
    if (m.labels[1].second == "GPTBot") {
      CHECK(m.labels[0].second == "OpenAI");
      gptbot_count = m.value;
    }
  }
  CHECK(defined == agents);
  CHECK(gptbot_count == 1);
  FakeStream s2;
  t.run(s2, {{"user-agent", gptbot}});
  CHECK(t.host.metric("sluice_ai_agent_requests_total") == 2);
}

TEST_CASE("ai_agent_tagger: incoming tag headers are removed on every request", "[filter]") {
  Tagger t(R"({"request_headers": {"agent": "x-ai-agent", "purpose": "x-ai-purpose"}})");
  REQUIRE(t.ok());
  const HeaderList spoofed = {{"X-AI-Agent", "GPTBot"},
                              {"x-ai-agent", "ClaudeBot"},
                              {"x-ai-purpose", "user"},
                              {"x-ai-provider", "kept: not configured"}};
  SECTION("a browser") {
    FakeStream s;
    HeaderList h = spoofed;
    h.push_back({"user-agent", browserUserAgents()[0]});
    t.run(s, h);
    CHECK(Tagger::headers(s, "x-ai-agent").empty());
    CHECK(Tagger::headers(s, "x-ai-purpose").empty());
    CHECK(Tagger::headers(s, "x-ai-provider").size() == 1);
    CHECK(s.metadata.empty());
  }
  SECTION("no User-Agent at all") {
    FakeStream s;
    t.run(s, spoofed);
    CHECK(Tagger::headers(s, "x-ai-agent").empty());
    CHECK(Tagger::headers(s, "x-ai-purpose").empty());
  }
  SECTION("an AI agent: exactly one value, ours") {
    FakeStream s;
    HeaderList h = spoofed;
    h.push_back({"user-agent", "CCBot/2.0 (https://commoncrawl.org/faq/)"});
    t.run(s, h);
    CHECK(Tagger::headers(s, "x-ai-agent") == std::vector<std::string>{"CCBot"});
    CHECK(Tagger::headers(s, "x-ai-purpose") == std::vector<std::string>{"training"});
  }
}

TEST_CASE("ai_agent_tagger: listed agents are blocked with a local reply", "[filter]") {
  Tagger t(R"({"block": {"agents": ["Bytespider", "GPTBot"], "status": 451},
               "request_headers": {"agent": "x-ai-agent"}})");
  REQUIRE(t.ok());
  FakeStream blocked;
  CHECK(t.run(blocked, {{"user-agent", "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 "
                                       "(KHTML, like Gecko) Mobile Safari/537.36; Bytespider"}}) ==
        SLUICE_STATUS_STOP);
  CHECK(blocked.local_replies == std::vector<uint32_t>{451});
  CHECK(Tagger::metadata(blocked, "ai.agent") == "Bytespider"); // still logged and counted
  FakeStream allowed;
  CHECK(t.run(allowed, {{"user-agent", "CCBot/2.0"}}) == SLUICE_STATUS_CONTINUE);
  CHECK(allowed.local_replies.empty());
  FakeStream browser;
  CHECK(t.run(browser, {{"user-agent", browserUserAgents()[1]}}) == SLUICE_STATUS_CONTINUE);
  CHECK(browser.local_replies.empty());
  CHECK(t.host.metric("sluice_ai_agent_requests_total") == 2);

  Tagger d(R"({"block": {"agents": ["GPTBot"]}})");
  REQUIRE(d.ok());
  FakeStream s;
  CHECK(d.run(s, {{"user-agent", "GPTBot/1.0"}}) == SLUICE_STATUS_STOP);
  CHECK(s.local_replies == std::vector<uint32_t>{403});
}

TEST_CASE("ai_agent_tagger: bad User-Agent values", "[filter]") {
  Tagger t(R"({"request_headers": {"agent": "x-ai-agent"}})");
  REQUIRE(t.ok());
  SECTION("empty") {
    CHECK(t.agentOf("") == "");
  }
  SECTION("64 KiB") {
    CHECK(t.agentOf(std::string(65536, 'A')) == "");
    std::string big(65536, ' ');
    CHECK(t.agentOf(big) == "");
    // A token at the very end of a huge value is still found (the scan is linear).
    std::string tail(65536 - 7, 'x');
    tail += " GPTBot";
    CHECK(t.agentOf(tail) == "GPTBot");
  }
  SECTION("binary and non-UTF-8 bytes") {
    std::string bin;
    for (int i = 0; i < 4096; i++) {
      bin += static_cast<char>(i * 37 % 256);
    }
    CHECK(t.agentOf(bin) == "");
    CHECK(t.agentOf(std::string("\xff\xfe\x00\x01", 4)) == "");
    // Bytes outside [A-Za-z0-9_.-] are boundaries, including NUL and invalid UTF-8.
    CHECK(t.agentOf(std::string("\xc3(GPTBot\x00", 9)) == "GPTBot");
    CHECK(t.agentOf("\xe2\x82GPTBot\xff") == "GPTBot");
  }
  SECTION("several User-Agent headers: the first one is classified") {
    FakeStream s;
    t.run(s, {{"user-agent", browserUserAgents()[0]}, {"user-agent", "GPTBot/1.0"}});
    CHECK(s.metadata.empty());
    FakeStream s2;
    t.run(s2, {{"User-Agent", "ClaudeBot/1.0"}, {"user-agent", browserUserAgents()[0]}});
    CHECK(Tagger::metadata(s2, "ai.agent") == "ClaudeBot");
    std::vector<std::pair<std::string, std::string>> many;
    for (int i = 0; i < 1000; i++) {
      many.emplace_back("user-agent", "GPTBot/1.0");
    }
    FakeStream s3;
    t.run(s3, many);
    CHECK(Tagger::metadata(s3, "ai.agent") == "GPTBot");
  }
}

TEST_CASE("ai_agent_tagger: classification allocates nothing", "[filter]") {
  // Measured through the Classifier directly: the fake host itself allocates when it stores
  // metadata and headers. The scan uses the worker's scratch and reports into a stack value.
  using namespace filters::ai_agent_tagger;
  filters::common::ConfigReader r;
  Taxonomy tax;
  REQUIRE(parseTaxonomy(builtinTaxonomy(), tax, r));
  Classifier c;
  REQUIRE(c.build(tax, r));
  hs_scratch_t* scratch = c.newScratch();
  REQUIRE(scratch != nullptr);
  const std::string ua = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
                         "GPTBot/1.0; +https://openai.com/gptbot)";
  CHECK(tax.agents[static_cast<size_t>(c.classify(ua, scratch))].name == "GPTBot");
  const std::vector<std::string>& browsers = browserUserAgents(); // built before counting
  const uint64_t before = allocationCount();
  for (int i = 0; i < 1000; i++) {
    c.classify(ua, scratch);
    c.classify(browsers[static_cast<size_t>(i) % browsers.size()], scratch);
  }
  CHECK(allocationCount() - before == 0);
  hs_free_scratch(scratch);
}

struct ConfigCase {
  const char* config;
  const char* pointer;
  const char* message; // a substring of the message
};

TEST_CASE("ai_agent_tagger: config errors name the place", "[filter]") {
  const ConfigCase c = GENERATE(values<ConfigCase>({
      {"not json", "", "not valid JSON"},
      {"[]", "", "expected an object"},
      {R"({"bogus": 1})", "/bogus", "unknown key"},
      {R"({"taxonomy": "nope"})", "/taxonomy", "expected \"builtin\""},
      {R"({"taxonomy": 3})", "/taxonomy", "expected \"builtin\""},
      {R"({"taxonomy": {}})", "/taxonomy/file", "required"},
      {R"({"taxonomy": {"file": ""}})", "/taxonomy/file", "non-empty"},
      {R"({"taxonomy": {"file": "t.json", "x": 1}})", "/taxonomy/x", "unknown key"},
      {R"({"taxonomy": {"file": "/nonexistent/t.json"}})", "/taxonomy/file", "cannot open"},
      {R"({"request_headers": []})", "/request_headers", "expected an object"},
      {R"({"request_headers": {"nope": "x"}})", "/request_headers/nope", "unknown key"},
      {R"({"request_headers": {"agent": "x ai"}})", "/request_headers/agent", "header name"},
      {R"({"request_headers": {"agent": ""}})", "/request_headers/agent", "non-empty"},
      {R"({"request_headers": {"agent": 7}})", "/request_headers/agent", "string"},
      {R"({"request_headers": {"agent": "User-Agent"}})", "/request_headers/agent", "cannot"},
      {R"({"request_headers": {"agent": "x-a", "provider": "X-A"}})", "/request_headers/provider",
       "already used"},
      {R"({"block": {"agents": ["NoSuchBot"]}})", "/block/agents/0", "unknown agent"},
      {R"({"block": {"agents": ["gptbot"]}})", "/block/agents/0", "unknown agent"},
      {R"({"block": {"agents": ["GPTBot"], "status": 200}})", "/block/status", "400..599"},
      {R"({"block": {"agents": ["GPTBot"], "status": 600}})", "/block/status", "400..599"},
      {R"({"block": {"agents": ["GPTBot"], "status": "403"}})", "/block/status", "400..599"},
      {R"({"block": {}})", "/block/agents", "required"},
      {R"({"block": {"agents": "GPTBot"}})", "/block/agents", "expected an array"},
      {R"({"block": {"agents": [1]}})", "/block/agents/0", "expected a string, got 1"},
      {R"({"block": {"agents": [""]}})", "/block/agents/0",
       "expected a non-empty string, got \"\""},
      {R"({"block": {"agents": ["GPTBot"], "when": 1}})", "/block/when", "unknown key"},
  }));
  INFO(c.config);
  Tagger t(c.config);
  CHECK_FALSE(t.ok());
  bool found = false;
  for (const auto& [pointer, message] : t.ctx.errors) {
    UNSCOPED_INFO(pointer << ": " << message);
    found = found || (pointer == c.pointer && message.find(c.message) != std::string::npos);
  }
  CHECK(found);
}

struct TaxonomyCase {
  const char* doc;
  const char* inner; // pointer inside the taxonomy file, quoted in the message
  const char* message;
};

TEST_CASE("ai_agent_tagger: taxonomy file errors name the entry", "[filter]") {
  const TaxonomyCase c = GENERATE(values<TaxonomyCase>({
      {"{", "", "not valid JSON"},
      {R"({"version": 1})", "/agents", "required"},
      {R"({"version": 2, "agents": []})", "/version", "1..1"},
      {R"({"version": 1, "agents": [], "extra": 1})", "/extra", "unknown key"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "patterns": ["ok", "(unclosed"], "source": {"note": "n"}}]})",
       "/agents/0/patterns/1", "agent \"A\": invalid pattern"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "patterns": ["x*"], "source": {"note": "n"}}]})",
       "/agents/0/patterns/0", "empty string"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "patterns": ["a\u0000b"], "source": {"note": "n"}}]})",
       "/agents/0/patterns/0", "NUL byte"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "chat",
          "tokens": ["A"], "source": {"note": "n"}}]})",
       "/agents/0/purpose", "expected one of"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "source": {"note": "n"}}]})",
       "/agents/0", "at least one token or pattern"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": ["A"]}]})",
       "/agents/0/source", "required"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": ["A"], "source": {}}]})",
       "/agents/0/source", "at least one source"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "precedence": 5000, "tokens": ["A"], "source": {"note": "n"}}]})",
       "/agents/0/precedence", "0..1000"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P\nQ", "purpose": "user",
          "tokens": ["A"], "source": {"note": "n"}}]})",
       "/agents/0/provider", "printable ASCII"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": [" A"], "source": {"note": "n"}}]})",
       "/agents/0/tokens/0", "printable ASCII"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": ["A"], "source": {"note": "n"}, "color": "red"}]})",
       "/agents/0/color", "unknown key"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": ["X"], "source": {"note": "n"}}, {"agent": "A", "provider": "P",
          "purpose": "user", "tokens": ["Y"], "source": {"note": "n"}}]})",
       "/agents/1/agent", "duplicate agent"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": ["X"], "source": {"note": "n"}}, {"agent": "B", "provider": "P",
          "purpose": "user", "tokens": ["x"], "source": {"note": "n"}}]})",
       "/agents/1/tokens/0", "also at /agents/0/tokens/0"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": ["Googlebot"], "source": {"note": "n"}}],
          "not_ai": [{"token": "googlebot", "reason": "search"}]})",
       "/agents/0/tokens/0", "listed in not_ai"},
      {R"({"version": 1, "agents": [{"agent": "A", "provider": "P", "purpose": "user",
          "tokens": ["A"], "source": {"note": "n"}}], "robots_txt_only": [{"token": "Z"}]})",
       "/robots_txt_only/0/reason", "required"},
  }));
  TempDir dir;
  dir.write("tax.json", c.doc);
  Tagger t(R"({"taxonomy": {"file": "tax.json"}})", dir.path());
  CHECK_FALSE(t.ok());
  bool found = false;
  const std::string quoted = std::string("at \"") + c.inner + "\"";
  for (const auto& [pointer, message] : t.ctx.errors) {
    UNSCOPED_INFO(pointer << ": " << message);
    found = found || (pointer == "/taxonomy/file" && message.find(quoted) != std::string::npos &&
                      message.find(c.message) != std::string::npos);
  }
  CHECK(found);
}

TEST_CASE("ai_agent_tagger: a taxonomy file in the built-in format loads", "[filter]") {
  // The checked-in file itself, through {"file": ...}, relative to the config's folder.
  TempDir dir;
  dir.write("taxonomy.json", std::string(filters::ai_agent_tagger::builtinTaxonomy()));
  Tagger t(R"({"taxonomy": {"file": "taxonomy.json"}, "block": {"agents": ["ClaudeBot"]}})",
           dir.path());
  REQUIRE(t.ok());
  CHECK(t.agentOf("Mozilla/5.0 (compatible; ClaudeBot/1.0; +claudebot@anthropic.com)") ==
        "ClaudeBot");
  Tagger b(R"({"taxonomy": "builtin"})");
  CHECK(b.ok());
}

TEST_CASE("ai_agent_tagger: the built-in taxonomy documents its exclusions", "[filter]") {
  const Json tax = builtinTaxonomyJson();
  std::set<std::string> robots;
  for (const Json& e : tax["robots_txt_only"]) {
    robots.insert(e["token"].get<std::string>());
    CHECK_FALSE(e["reason"].get<std::string>().empty());
  }
  for (const char* t : {"Google-Extended", "Applebot-Extended", "Webzio-Extended"}) {
    CHECK(robots.count(t) == 1);
  }
  std::set<std::string> not_ai;
  for (const Json& e : tax["not_ai"]) {
    not_ai.insert(e["token"].get<std::string>());
  }
  for (const char* t : {"Applebot", "Googlebot", "bingbot", "DuckDuckBot", "facebookexternalhit"}) {
    CHECK(not_ai.count(t) == 1);
  }
  // Every ai-robots.json key is an agent's source or an exclusion.
  const Json ai = loadJson(sharedDataDir() + "/ai-robots.json");
  REQUIRE(ai.is_object());
  std::set<std::string> covered = robots;
  covered.insert(not_ai.begin(), not_ai.end());
  for (const Json& a : tax["agents"]) {
    for (const Json& k : a["source"].value("ai_robots", Json::array())) {
      covered.insert(k.get<std::string>());
    }
  }
  for (auto it = ai.begin(); it != ai.end(); ++it) {
    INFO(it.key());
    CHECK(covered.count(it.key()) == 1);
  }
}

} // namespace
} // namespace sluice::testing
