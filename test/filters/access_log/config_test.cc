#include "filters/access_log/config.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sluice::filters::access_log {
namespace {

std::optional<std::string> underBase(std::string_view path) {
  if (!path.empty() && path[0] == '/') {
    return std::string(path);
  }
  return "/base/" + std::string(path);
}

struct Parsed {
  Config config;
  std::vector<ConfigError> errors;
};

Parsed parse(std::string_view json) {
  Parsed p;
  p.config = parseConfig(json, underBase, p.errors);
  return p;
}

std::vector<std::string> pointers(const std::vector<ConfigError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) {
    out.push_back(e.pointer);
  }
  return out;
}

TEST_CASE("AccessLog: an empty config logs JSON to stdout with the defaults", "[access_log]") {
  const Parsed p = parse("{}");
  REQUIRE(p.errors.empty());
  CHECK(p.config.sink == Sink::Stdout);
  CHECK(p.config.path == "stdout");
  CHECK(p.config.formatter.kind() == FormatKind::Json);
  CHECK(p.config.when == When{});
  CHECK(p.config.buffer_bytes == 65536);
  CHECK(p.config.flush_ms == 1000);
}

TEST_CASE("AccessLog: a full config parses every key", "[access_log]") {
  const Parsed p = parse(R"({"path": "logs/access.log", "format": {"template": "%STATUS%"},
      "when": {"status_min": 400, "min_duration_ms": 500, "sample": 0.25},
      "buffer_bytes": 0, "flush_ms": 50})");
  REQUIRE(p.errors.empty());
  CHECK(p.config.sink == Sink::File);
  CHECK(p.config.path == "/base/logs/access.log");
  CHECK(p.config.formatter.kind() == FormatKind::Template);
  CHECK(p.config.formatter.segments() == std::vector<Segment>{{Segment::Kind::Status, ""}});
  CHECK(p.config.when == When{400, 500, 0.25});
  CHECK(p.config.buffer_bytes == 0);
  CHECK(p.config.flush_ms == 50);
}

TEST_CASE("AccessLog: path and format choices", "[access_log]") {
  CHECK(parse(R"({"path": "stderr"})").config.sink == Sink::Stderr);
  CHECK(parse(R"({"path": "stdout"})").config.sink == Sink::Stdout);
  CHECK(parse(R"({"path": "/var/log/a.log"})").config.path == "/var/log/a.log");
  CHECK(parse(R"({"format": "combined"})").config.formatter.kind() == FormatKind::Combined);
  CHECK(parse(R"({"format": "json"})").config.formatter.kind() == FormatKind::Json);
  CHECK(parse(R"({"when": {}})").config.when == When{});
  CHECK(parse(R"({"when": {"sample": 0}})").config.when.sample == 0.0);
  CHECK(parse(R"({"when": {"sample": 1}})").config.when.sample == 1.0);
}

TEST_CASE("AccessLog: config errors name the exact JSON pointer", "[access_log]") {
  const auto [json, pointer, message] = GENERATE(table<std::string, std::string, std::string>({
      {R"([])", "", "expected an object, got []"},
      {R"("x")", "", "expected an object"},
      {R"({"pathh": "stdout"})", "/pathh", "unknown key \"pathh\""},
      {R"({"sample": 1})", "/sample", "unknown key \"sample\""},
      {R"({"a/b~c": 1})", "/a~1b~0c", "unknown key \"a/b~c\""},
      {R"({"path": 42})", "/path", "got 42"},
      {R"({"path": ""})", "/path", "expected \"stdout\", \"stderr\" or a file path"},
      {R"({"path": "a\u0000b"})", "/path", "NUL"},
      {R"({"format": "xml"})", "/format", "expected \"json\", \"combined\" or {\"template\""},
      {R"({"format": 1})", "/format", "got 1"},
      {R"({"format": {}})", "/format/template", "missing"},
      {R"({"format": {"template": 5}})", "/format/template", "expected a string, got 5"},
      {R"({"format": {"template": ""}})", "/format/template",
       "expected a non-empty string, got \"\""},
      {R"({"format": {"template": "%NOPE%"}})", "/format/template", "unknown command %NOPE%"},
      {R"({"format": {"template": "%STATUS%", "x": 1}})", "/format/x", "unknown key"},
      {R"({"when": 1})", "/when", "expected an object"},
      {R"({"when": {"status": 400}})", "/when/status", "unknown key \"status\""},
      {R"({"when": {"status_min": 99}})", "/when/status_min", "expected an integer 100..599"},
      {R"({"when": {"status_min": 600}})", "/when/status_min", "got 600"},
      {R"({"when": {"status_min": "400"}})", "/when/status_min", "got \"400\""},
      {R"({"when": {"status_min": 400.5}})", "/when/status_min", "got 400.5"},
      {R"({"when": {"min_duration_ms": -1}})", "/when/min_duration_ms", "got -1"},
      {R"({"when": {"sample": 1.5}})", "/when/sample", "expected a number 0..1, got 1.5"},
      {R"({"when": {"sample": -0.1}})", "/when/sample", "0..1"},
      {R"({"when": {"sample": true}})", "/when/sample", "got true"},
      {R"({"buffer_bytes": -5})", "/buffer_bytes", "expected an integer 0..67108864"},
      {R"({"buffer_bytes": 67108865})", "/buffer_bytes", "got 67108865"},
      {R"({"flush_ms": 0})", "/flush_ms", "expected an integer 1..3600000, got 0"},
      {R"({"flush_ms": null})", "/flush_ms", "got null"},
  }));
  const Parsed p = parse(json);
  INFO(json);
  REQUIRE(p.errors.size() == 1);
  CHECK(p.errors[0].pointer == pointer);
  CHECK_THAT(p.errors[0].message, Catch::Contains(message));
}

TEST_CASE("AccessLog: every config error is reported, not just the first", "[access_log]") {
  const Parsed p = parse(R"({"path": 1, "format": "xml", "bogus": 0,
      "when": {"status_min": 1, "sample": 2, "x": 0}, "buffer_bytes": "big", "flush_ms": 0})");
  auto got = pointers(p.errors);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"/bogus", "/buffer_bytes", "/flush_ms", "/format", "/path",
                                        "/when/sample", "/when/status_min", "/when/x"});
}

TEST_CASE("AccessLog: a path that cannot be resolved is an error at /path", "[access_log]") {
  std::vector<ConfigError> errors;
  parseConfig(R"({"path": "x.log"})", [](std::string_view) { return std::nullopt; }, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/path");
  CHECK_THAT(errors[0].message, Catch::Contains("too long"));
}

// The config is read by the filters' shared reader: one wording per kind of mistake, whole
// messages as docs/config-errors.md gives them (access_log used to add "(expected one of: ...)"
// to an unknown key and printed a number's range its own way).
TEST_CASE("AccessLog: config errors use the shared wordings", "[access_log]") {
  const auto [json, pointer, message] = GENERATE(table<std::string, std::string, std::string>({
      {R"({"pathh": "stdout"})", "/pathh", "unknown key \"pathh\""},
      {R"({"when": {"statusmin": 400}})", "/when/statusmin", "unknown key \"statusmin\""},
      {R"({"format": {"template": "%STATUS%", "tmpl": 1}})", "/format/tmpl",
       "unknown key \"tmpl\""},
      {R"({"a/b~c": 1})", "/a~1b~0c", "unknown key \"a/b~c\""},
      {R"({"when": {"sample": "half"}})", "/when/sample", "expected a number 0..1, got \"half\""},
      {R"({"when": {"status_min": 99}})", "/when/status_min",
       "expected an integer 100..599, got 99"},
      {R"({"when": {"min_duration_ms": 86400001}})", "/when/min_duration_ms",
       "expected an integer 0..86400000, got 86400001"},
      {R"({"buffer_bytes": true})", "/buffer_bytes", "expected an integer 0..67108864, got true"},
      {R"({"path": ["a"]})", "/path", "expected a string, got [\"a\"]"},
      {R"({"format": {"template": null}})", "/format/template", "expected a string, got null"},
  }));
  const Parsed p = parse(json);
  INFO(json);
  REQUIRE(p.errors.size() == 1);
  CHECK(p.errors[0] == ConfigError{pointer, message});
}

TEST_CASE("AccessLog: text that is not JSON is an error at the root", "[access_log]") {
  const Parsed p = parse("{not json");
  REQUIRE(p.errors.size() == 1);
  CHECK(p.errors[0].pointer == "");
}

} // namespace
} // namespace sluice::filters::access_log
