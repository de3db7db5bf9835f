#include "filters/common/request_match.h"
#include "test/filters/common/fake_host.h"

#include <catch2/catch.hpp>

using sluice::filters::common::ConfigReader;
using sluice::filters::common::Json;
using sluice::filters::common::MatchSet;

namespace {

struct Built {
  ConfigReader reader;
  MatchSet set;
  hs_scratch_t* scratch = nullptr;
  ~Built() {
    if (scratch != nullptr) {
      hs_free_scratch(scratch);
    }
  }
};

void build(Built& b, const char* text) {
  Json j = Json::parse(text);
  b.set.add(j, "/match", b.reader);
  REQUIRE(b.set.finish(b.reader));
  b.scratch = b.set.newScratch();
}

bool run(Built& b, const char* method, const char* path,
         std::vector<std::pair<std::string, std::string>> headers = {}) {
  sluice::testing::FakeHost host;
  sluice::testing::FakeStream s;
  s.setHeader(SLUICE_HEADERS_REQUEST, ":method", method);
  s.setHeader(SLUICE_HEADERS_REQUEST, ":path", path);
  for (auto& [n, v] : headers) {
    s.setHeader(SLUICE_HEADERS_REQUEST, n, v);
  }
  return b.set.matches(0, host.table(), s.handle(), b.scratch);
}

} // namespace

TEST_CASE("request match: prefix, path, regex and any ignore the query") {
  Built p;
  build(p, R"({"prefix": "/api"})");
  CHECK(run(p, "GET", "/api/x?y=1"));
  CHECK_FALSE(run(p, "GET", "/ap"));
  Built e;
  build(e, R"({"path": "/exact"})");
  CHECK(run(e, "GET", "/exact?q"));
  CHECK_FALSE(run(e, "GET", "/exact/more"));
  Built r;
  build(r, R"({"regex": "^/users/[0-9]+$"})");
  CHECK(run(r, "GET", "/users/42?x=/a"));
  CHECK_FALSE(run(r, "GET", "/users/4a"));
  Built any;
  build(any, R"({})");
  CHECK(run(any, "DELETE", "/whatever"));
}

TEST_CASE("request match: methods and header conditions") {
  Built b;
  build(b, R"({"prefix": "/", "methods": ["POST"], "headers": [
      {"name": "X-Canary", "exact": "1"}, {"name": "x-tenant", "regex": "^t[0-9]$"},
      {"name": "x-debug", "present": false}]})");
  CHECK(run(b, "POST", "/", {{"x-canary", "1"}, {"x-tenant", "t7"}}));
  CHECK_FALSE(run(b, "GET", "/", {{"x-canary", "1"}, {"x-tenant", "t7"}}));
  CHECK_FALSE(run(b, "POST", "/", {{"x-canary", "2"}, {"x-tenant", "t7"}}));
  CHECK_FALSE(run(b, "POST", "/", {{"x-canary", "1"}, {"x-tenant", "tt"}}));
  CHECK_FALSE(run(b, "POST", "/", {{"x-canary", "1"}, {"x-tenant", "t7"}, {"x-debug", ""}}));
}

TEST_CASE("request match: config errors name their pointer") {
  ConfigReader r;
  MatchSet set;
  set.add(Json::parse(R"({"prefix": "api", "regex": "(", "methods": ["G T"],
                          "headers": [{"exact": "1"}], "nope": 1})"),
          "/rules/0/match", r);
  auto has = [&](const std::string& p) {
    for (const auto& e : r.errors()) {
      if (e.pointer == p) {
        return true;
      }
    }
    return false;
  };
  CHECK(has("/rules/0/match/prefix"));
  CHECK(has("/rules/0/match/regex"));
  CHECK(has("/rules/0/match"));
  CHECK(has("/rules/0/match/methods/0"));
  CHECK(has("/rules/0/match/headers/0/name"));
  CHECK(has("/rules/0/match/nope"));
}

TEST_CASE("request match: header conditions are read by the code the router shares") {
  // One reader for MatchSet and the router (filters/router/config.cc): the same pointers and
  // wordings; the caller compiles each regex (MatchSet searches, the router anchors).
  ConfigReader r;
  std::vector<std::string> compiled;
  auto conditions = sluice::filters::common::parseHeaderConditions(
      Json::parse(R"({"headers": [{"name": "X-A", "regex": "b+"}, {"name": "x-b"},
                                  {"name": "c", "exact": "1", "prefix": "1"}]})"),
      "/m", r, [&](const std::string& pattern, const std::string& at) -> hs_database_t* {
        compiled.push_back(at + " " + pattern);
        return nullptr;
      });
  REQUIRE(conditions.size() == 3);
  CHECK(conditions[0].name == "x-a");
  CHECK(conditions[0].kind == sluice::filters::common::HeaderCondition::Kind::Regex);
  CHECK(conditions[1].kind == sluice::filters::common::HeaderCondition::Kind::Present);
  CHECK(compiled == std::vector<std::string>{"/m/headers/0/regex b+"});
  REQUIRE(r.errors().size() == 1);
  CHECK(r.errors()[0].pointer == "/m/headers/2");
  CHECK(r.errors()[0].message == "expected at most one of exact, prefix, regex, present");
}
