#include "filters/router/config.h"

#include "filters/common/config_reader.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>

using namespace sluice::filters::router;
using sluice::filters::common::ConfigError;
using sluice::filters::common::ConfigReader;

namespace {

std::unique_ptr<RouteTable> parse(const std::string& json, std::vector<ConfigError>& errors) {
  auto exists = [](std::string_view c) { return c == "a" || c == "b" || c == "c"; };
  ConfigReader reader;
  auto table = RouteTable::parse(json, exists, reader);
  errors = reader.errors();
  return table;
}

std::unique_ptr<RouteTable> parseOk(const std::string& json) {
  std::vector<ConfigError> errors;
  auto t = parse(json, errors);
  for (auto& e : errors) {
    FAIL(e.pointer + ": " + e.message);
  }
  REQUIRE(t);
  return t;
}

struct Headers {
  std::map<std::string, std::string> h;
  bool operator()(const std::string& name, std::string_view* out) const {
    auto it = h.find(name);
    if (it == h.end()) {
      return false;
    }
    *out = it->second;
    return true;
  }
};

const Route* match(const RouteTable& t, std::string_view host, std::string_view method,
                   std::string_view path, Headers h = {}) {
  const VirtualHost* vh = t.findVirtualHost(host);
  if (vh == nullptr) {
    return nullptr;
  }
  auto scratch = t.newScratch();
  return t.match(*vh, method, path, h, *scratch);
}

} // namespace

TEST_CASE("Router: virtual host selection prefers exact, then longest wildcard, then *",
          "[router]") {
  auto t = parseOk(R"({"virtual_hosts": [
    {"name": "exact", "domains": ["api.example.com"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},
    {"name": "deep", "domains": ["*.eu.example.com"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},
    {"name": "wild", "domains": ["*.example.com"], "routes": [{"match": {"prefix": "/"}, "cluster": "b"}]},
    {"name": "pre", "domains": ["internal.*"], "routes": [{"match": {"prefix": "/"}, "cluster": "b"}]},
    {"name": "any", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "c"}]}]})");
  CHECK(t->findVirtualHost("api.example.com")->name == "exact");
  CHECK(t->findVirtualHost("API.EXAMPLE.COM:443")->name == "exact");
  CHECK(t->findVirtualHost("x.eu.example.com")->name == "deep");
  CHECK(t->findVirtualHost("www.example.com")->name == "wild");
  CHECK(t->findVirtualHost("example.com")->name == "any");
  CHECK(t->findVirtualHost("internal.corp")->name == "pre");
  CHECK(t->findVirtualHost("")->name == "any");
}

TEST_CASE("Router: 10,000 wildcard domains, longest match wins, suffix and prefix forms",
          "[router]") {
  std::string json = R"({"virtual_hosts": [)";
  for (int i = 0; i < 5000; i++) {
    std::string n = std::to_string(i);
    json += R"({"name": "s)" + n + R"(", "domains": ["*.t)" + n +
            R"(.example.com"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},)";
    json += R"({"name": "p)" + n + R"(", "domains": ["host)" + n +
            R"(.*"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},)";
  }
  json +=
      R"({"name": "deep", "domains": ["*.x.t7.example.com"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},)";
  json +=
      R"({"name": "bare", "domains": ["*ample.org"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},)";
  json +=
      R"({"name": "longpre", "domains": ["host1.internal.*"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},)";
  json +=
      R"({"name": "any", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "b"}]}]})";
  auto t = parseOk(json);
  CHECK(t->findVirtualHost("a.t0.example.com")->name == "s0");
  CHECK(t->findVirtualHost("a.b.t4999.example.com:8080")->name == "s4999");
  CHECK(t->findVirtualHost("y.x.t7.example.com")->name == "deep"); // longest suffix
  CHECK(t->findVirtualHost("x.t7.example.com")->name == "s7");
  CHECK(t->findVirtualHost("t7.example.com")->name == "any"); // "*.t7..." needs a label before
  CHECK(t->findVirtualHost("a.t5000.example.com")->name == "any");
  CHECK(t->findVirtualHost("example.org")->name == "bare"); // "*ample.org": any characters
  CHECK(t->findVirtualHost("ample.org")->name == "any");    // but at least one
  CHECK(t->findVirtualHost("host42.corp")->name == "p42");
  CHECK(t->findVirtualHost("host1.internal.corp")->name == "longpre"); // longest prefix
  CHECK(t->findVirtualHost("host1.corp")->name == "p1");
  CHECK(t->findVirtualHost("host1.")->name == "any"); // the prefix needs something after it
}

TEST_CASE("Router: first matching route wins across match kinds", "[router]") {
  auto t = parseOk(R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
    {"match": {"path": "/exact"}, "cluster": "a", "name": "exact"},
    {"match": {"regex": "^/users/[0-9]+$"}, "cluster": "a", "name": "users"},
    {"match": {"regex": "/files/.*\\.png"}, "cluster": "a", "name": "png"},
    {"match": {"prefix": "/v1/", "methods": ["POST", "PUT"]}, "cluster": "b", "name": "write"},
    {"match": {"prefix": "/v1/", "headers": [{"name": "X-Canary", "exact": "1"}]}, "cluster": "b", "name": "canary"},
    {"match": {"prefix": "/v1/", "headers": [{"name": "x-beta", "present": true}]}, "cluster": "b", "name": "beta"},
    {"match": {"prefix": "/v1/", "headers": [{"name": "x-ver", "regex": "2\\.[0-9]+"}]}, "cluster": "b", "name": "v2"},
    {"match": {"prefix": "/"}, "cluster": "c", "name": "rest"}]}]})");
  auto name = [&](std::string_view m, std::string_view p, Headers h = {}) {
    const Route* r = match(*t, "h", m, p, h);
    return r ? r->name : std::string("none");
  };
  CHECK(name("GET", "/exact") == "exact");
  CHECK(name("GET", "/exact?x") == "exact");
  CHECK(name("GET", "/exact/") == "rest");
  CHECK(name("GET", "/users/123") == "users");
  CHECK(name("GET", "/users/123/x") == "rest");
  CHECK(name("GET", "/files/a/b.png") == "png");
  CHECK(name("GET", "/files/a/b.pngx") == "rest");
  CHECK(name("POST", "/v1/x") == "write");
  CHECK(name("GET", "/v1/x", Headers{{{"x-canary", "1"}}}) == "canary");
  CHECK(name("GET", "/v1/x", Headers{{{"x-canary", "0"}}}) == "rest");
  CHECK(name("GET", "/v1/x", Headers{{{"x-beta", ""}}}) == "beta");
  CHECK(name("GET", "/v1/x", Headers{{{"x-ver", "2.17"}}}) == "v2");
  CHECK(name("GET", "/v1/x", Headers{{{"x-ver", "3.1"}}}) == "rest");
}

TEST_CASE("Router: a header matcher with present false matches only without the header",
          "[router]") {
  auto t = parseOk(R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
    {"match": {"prefix": "/", "headers": [{"name": "X-Internal", "present": false}]}, "cluster": "a", "name": "public"},
    {"match": {"prefix": "/", "headers": [{"name": "x-internal", "present": true}]}, "cluster": "b", "name": "internal"}]}]})");
  auto name = [&](Headers h) {
    const Route* r = match(*t, "h", "GET", "/x", h);
    return r ? r->name : std::string("none");
  };
  CHECK(name(Headers{}) == "public");
  CHECK(name(Headers{{{"x-internal", ""}}}) == "internal");
  CHECK(name(Headers{{{"x-internal", "1"}}}) == "internal");
}

// Header conditions are read and evaluated by filters/common/request_match (one implementation
// with ratelimit and jwt_authn); the router compiles their regexes itself, anchored at both ends
// (docs/filters/router.md), where the rule filters search.
TEST_CASE("Router: a header regex is anchored at both ends", "[router]") {
  auto t = parseOk(R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
    {"match": {"prefix": "/", "headers": [{"name": "X-Ver", "regex": "2\\.[0-9]+"}]}, "cluster": "a", "name": "v2"},
    {"match": {"prefix": "/", "headers": [{"name": "x-any", "prefix": "a"}, {"name": "x-no", "present": false}]}, "cluster": "b", "name": "all"},
    {"match": {"prefix": "/"}, "cluster": "c", "name": "rest"}]}]})");
  auto name = [&](Headers h) {
    const Route* r = match(*t, "h", "GET", "/x", h);
    return r ? r->name : std::string("none");
  };
  CHECK(name(Headers{{{"x-ver", "2.17"}}}) == "v2");
  CHECK(name(Headers{{{"x-ver", "v2.17"}}}) == "rest");
  CHECK(name(Headers{{{"x-ver", "2.17b"}}}) == "rest");
  CHECK(name(Headers{{{"x-any", "abc"}}}) == "all");
  CHECK(name(Headers{{{"x-any", "abc"}, {"x-no", ""}}}) == "rest");
  CHECK(name(Headers{{{"x-any", "bc"}}}) == "rest");
}

TEST_CASE("Router: header condition errors name their pointer in the shared wordings",
          "[router]") {
  const auto [headers, pointer, message] = GENERATE(table<std::string, std::string, std::string>({
      // docs/config-errors.md: an empty string where a value is required, then a string that is
      // not what the key needs.
      {R"([{"name": ""}])", "/headers/0/name", "expected a non-empty string, got \"\""},
      {R"([{"name": "x canary", "exact": "1"}])", "/headers/0/name",
       "expected a header name, got \"x canary\""},
      {R"([{"name": 7}])", "/headers/0/name", "expected a string, got 7"},
      {R"([{"exact": "1"}])", "/headers/0/name", "required"},
      {R"([{"name": "a", "exact": "1", "present": true}])", "/headers/0",
       "expected at most one of exact, prefix, regex, present"},
      {R"([{"name": "a", "present": "yes"}])", "/headers/0/present",
       "expected true or false, got \"yes\""},
      {R"([{"name": "a", "exakt": "1"}])", "/headers/0/exakt", "unknown key \"exakt\""},
      {R"([{"name": "a"}, 5])", "/headers/1", "expected an object, got 5"},
      {R"({"name": "a"})", "/headers", "expected an array, got {\"name\":\"a\"}"},
      {R"([{"name": "a", "regex": "(a"}])", "/headers/0/regex",
       // the rest is Hyperscan's own text, which differs between its versions
       "invalid or unsupported regex \"(a\": "},
  }));
  std::vector<ConfigError> errors;
  const std::string json =
      R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "headers": )" +
      headers + R"(}, "cluster": "a"}]}]})";
  INFO(json);
  CHECK_FALSE(parse(json, errors));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/virtual_hosts/0/routes/0/match" + pointer);
  CHECK(errors[0].message.rfind(message, 0) == 0);
  if (pointer.ends_with("/regex")) {
    CHECK(errors[0].message.size() > message.size());  // Hyperscan's reason follows
  } else {
    CHECK(errors[0].message == message);
  }
}

TEST_CASE("Router: the method error says what was meant", "[router]") {
  std::vector<ConfigError> errors;
  parse(
      R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "methods": ["post"]}, "cluster": "a"}]}]})",
      errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message ==
        "unknown method \"post\": methods are case-sensitive, did you mean \"POST\"?");
  CHECK(knownMethod("M-SEARCH"));
  CHECK_FALSE(knownMethod("FETCH"));
}

TEST_CASE("Router: config errors carry JSON pointers", "[router]") {
  struct Case {
    const char* json;
    const char* pointer;
  };
  auto c = GENERATE(
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefx": "/"}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/prefx"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "zz"}]}]})",
          "/virtual_hosts/0/routes/0/cluster"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"regex": "(a"}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/regex"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"path": "/a"}, "strip_prefix": true, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/strip_prefix"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "redirect": {"status": 200}}]}]})",
          "/virtual_hosts/0/routes/0/redirect/status"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": []}, {"name": "w", "domains": ["*"], "routes": []}]})",
          "/virtual_hosts/1/domains/0"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "retry": {"on": ["sometimes"]}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/retry/on/0"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/"}}]}]})",
          "/virtual_hosts/0/routes/0"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "headers": [{"name": ""}]}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/headers/0/name"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "headers": [{"name": "x canary", "exact": "1"}]}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/headers/0/name"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "headers": [{"name": "x:y", "present": true}]}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/headers/0/name"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "methods": ["GET", "get"]}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/methods/1"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "methods": ["FETCH"]}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/methods/0"},
      Case{
          R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [{"match": {"prefix": "/", "methods": ["GE T"]}, "cluster": "a"}]}]})",
          "/virtual_hosts/0/routes/0/match/methods/0"},
      Case{R"({"vhosts": []})", "/vhosts"});
  std::vector<ConfigError> errors;
  auto t = parse(c.json, errors);
  CHECK_FALSE(t);
  REQUIRE_FALSE(errors.empty());
  bool found = false;
  for (auto& e : errors) {
    found = found || e.pointer == c.pointer;
  }
  INFO(c.json);
  INFO(errors[0].pointer + ": " + errors[0].message);
  CHECK(found);
}

TEST_CASE("Router: 10,000 regex and prefix routes compile once and match", "[router]") {
  std::string routes;
  for (int i = 0; i < 10000; i++) {
    if (i) {
      routes += ",";
    }
    if (i % 2 == 0) {
      routes += R"({"match": {"regex": "^/r)" + std::to_string(i) +
                R"(/[a-z]+$"}, "cluster": "a", "name": "r)" + std::to_string(i) + "\"}";
    } else {
      routes += R"({"match": {"prefix": "/p)" + std::to_string(i) +
                R"(/"}, "cluster": "b", "name": "p)" + std::to_string(i) + "\"}";
    }
  }
  auto t = parseOk(R"({"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [)" + routes +
                   "]}]}");
  CHECK(t->regexCount() == 5000);
  CHECK(match(*t, "h", "GET", "/r9998/abc")->name == "r9998");
  CHECK(match(*t, "h", "GET", "/p9999/x")->name == "p9999");
  CHECK(match(*t, "h", "GET", "/r9998/ABC") == nullptr);
  CHECK(match(*t, "h", "GET", "/r0/a")->name == "r0");
}
