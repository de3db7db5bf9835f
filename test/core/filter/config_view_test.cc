// The host's typed config view (ABI 1.3) and the metric namespace, through the real host table.

#include "core/filter/config_context.h"
#include "core/filter/registry.h"
#include "core/stats/core_metrics.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

using namespace sluice;

namespace {

std::string_view sv(sluice_str_t s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}
sluice_str_t st(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}

struct View {
  filter::ConfigContext ctx;
  const sluice_host_t* host = filter::hostTable();
  sluice_config_view_t* view = nullptr;
  sluice_config_problem_t problem{sizeof(sluice_config_problem_t), {nullptr, 0}, {nullptr, 0}};

  explicit View(std::string_view json) {
    ctx.pointer = "/listeners/0/filters/1/config";
    view = host->sluice_host_config_view(handle(), st(json), &problem);
  }
  sluice_config_ctx_t* handle() { return reinterpret_cast<sluice_config_ctx_t*>(&ctx); }
  std::string where() const { return std::string(sv(problem.pointer)); }
  std::string what() const { return std::string(sv(problem.message)); }
};

const char* const kDoc = R"({
  "name": "edge", "port": 8080, "big": 9223372036854775807, "neg": -3, "ratio": 0.25,
  "exp": 1e3, "on": true, "off": false, "nothing": null,
  "rules": [{"prefix": "/a", "weight": 2}, {"prefix": "/b"}],
  "headers": {"x-a": "1", "x-b": "2"},
  "a/b": "slash", "m~n": "tilde", "": "empty key",
  "nested": {"deeper": {"list": [[1, 2], [3]]}}
})";

} // namespace

TEST_CASE("ConfigView: typed getters read by JSON pointer", "[filter][config_view]") {
  View v(kDoc);
  REQUIRE(v.view != nullptr);
  const sluice_host_t* h = v.host;
  sluice_str_t s{};
  int64_t i = 0;
  bool b = false;
  double d = 0;
  size_t n = 0;

  CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/name"), &s, &v.problem) ==
        SLUICE_CONFIG_OK);
  CHECK(sv(s) == "edge");
  CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/port"), &i, &v.problem) ==
        SLUICE_CONFIG_OK);
  CHECK(i == 8080);
  CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/big"), &i, nullptr) == SLUICE_CONFIG_OK);
  CHECK(i == INT64_MAX);
  CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/neg"), &i, nullptr) == SLUICE_CONFIG_OK);
  CHECK(i == -3);
  CHECK(h->sluice_host_config_get_double(v.view, SLUICE_STR("/ratio"), &d, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(d == 0.25);
  CHECK(h->sluice_host_config_get_double(v.view, SLUICE_STR("/port"), &d, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(d == 8080);
  CHECK(h->sluice_host_config_get_bool(v.view, SLUICE_STR("/on"), &b, nullptr) == SLUICE_CONFIG_OK);
  CHECK(b);
  CHECK(h->sluice_host_config_get_bool(v.view, SLUICE_STR("/off"), &b, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK_FALSE(b);
  CHECK(h->sluice_host_config_get_length(v.view, SLUICE_STR("/rules"), &n, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(n == 2);
  CHECK(h->sluice_host_config_get_length(v.view, SLUICE_STR("/headers"), &n, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(n == 2);
  // Array elements and nested pointers.
  CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/rules/1/prefix"), &s, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(sv(s) == "/b");
  CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/nested/deeper/list/0/1"), &i, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(i == 2);
  // Escaping: ~1 is "/", ~0 is "~"; "/" alone is the member named "".
  CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/a~1b"), &s, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(sv(s) == "slash");
  CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/m~0n"), &s, nullptr) ==
        SLUICE_CONFIG_OK);
  CHECK(sv(s) == "tilde");
  CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/"), &s, nullptr) == SLUICE_CONFIG_OK);
  CHECK(sv(s) == "empty key");
  // Types.
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("")) == SLUICE_JSON_OBJECT);
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("/rules")) == SLUICE_JSON_ARRAY);
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("/nothing")) == SLUICE_JSON_NULL);
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("/on")) == SLUICE_JSON_BOOL);
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("/ratio")) == SLUICE_JSON_NUMBER);
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("/name")) == SLUICE_JSON_STRING);
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("/absent")) == SLUICE_JSON_MISSING);
  CHECK(h->sluice_host_config_type(v.view, SLUICE_STR("/rules/2")) == SLUICE_JSON_MISSING);
}

TEST_CASE("ConfigView: missing keys and wrong types come back with their pointer",
          "[filter][config_view]") {
  View v(kDoc);
  REQUIRE(v.view != nullptr);
  const sluice_host_t* h = v.host;
  sluice_str_t s{SLUICE_STR("default")};
  int64_t i = 7;

  SECTION("a missing key leaves the default and says it is required") {
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/absent"), &s, &v.problem) ==
          SLUICE_CONFIG_MISSING);
    CHECK(sv(s) == "default");
    CHECK(v.where() == "/absent");
    CHECK(v.what() == "is required");
    CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/rules/1/weight"), &i, &v.problem) ==
          SLUICE_CONFIG_MISSING);
    CHECK(i == 7);
    CHECK(v.where() == "/rules/1/weight");
    CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/rules/01"), &i, &v.problem) ==
          SLUICE_CONFIG_MISSING); // a leading zero is not an index (RFC 6901)
  }
  SECTION("wrong types name what was expected and what was found") {
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/port"), &s, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(v.where() == "/port");
    CHECK(v.what() == "expected a string, got 8080");
    CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/ratio"), &i, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(v.what() == "expected an integer, got 0.25");
    CHECK(h->sluice_host_config_get_int(v.view, SLUICE_STR("/exp"), &i, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(h->sluice_host_config_get_bool(v.view, SLUICE_STR("/name"), nullptr, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(v.what() == "expected true or false, got \"edge\"");
    CHECK(h->sluice_host_config_get_double(v.view, SLUICE_STR("/nothing"), nullptr, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(v.what() == "expected a number, got null");
    CHECK(h->sluice_host_config_get_length(v.view, SLUICE_STR("/name"), nullptr, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(v.what() == "expected an array or an object, got \"edge\"");
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/rules"), &s, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(v.what() == R"(expected a string, got [{"prefix":"/a","weight":2},{"prefix":"/b"}])");
  }
  SECTION("a pointer through a scalar points at the scalar") {
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/name/first"), &s, &v.problem) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(v.where() == "/name");
    CHECK(v.what() == "expected an object or an array, got \"edge\"");
  }
  SECTION("malformed pointers") {
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("name"), &s, &v.problem) ==
          SLUICE_CONFIG_BAD_POINTER);
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/m~2n"), &s, &v.problem) ==
          SLUICE_CONFIG_BAD_POINTER);
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/m~"), &s, &v.problem) ==
          SLUICE_CONFIG_BAD_POINTER);
    CHECK(h->sluice_host_config_get_string(nullptr, SLUICE_STR("/name"), &s, &v.problem) ==
          SLUICE_CONFIG_BAD_POINTER);
    CHECK(sv(s) == "default");
  }
  SECTION("a problem struct too small for this ABI is left alone") {
    sluice_config_problem_t small{4, {nullptr, 0}, {nullptr, 0}};
    CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/port"), &s, &small) ==
          SLUICE_CONFIG_WRONG_TYPE);
    CHECK(small.message.ptr == nullptr);
  }
  // The problem hands straight to sluice_host_config_error: the filter's pointer is prefixed.
  CHECK(h->sluice_host_config_get_string(v.view, SLUICE_STR("/port"), &s, &v.problem) ==
        SLUICE_CONFIG_WRONG_TYPE);
  h->sluice_host_config_error(v.handle(), v.problem.pointer, v.problem.message);
  REQUIRE(v.ctx.errors.size() == 1);
  CHECK(v.ctx.errors[0].toString() ==
        "/listeners/0/filters/1/config/port: expected a string, got 8080");
}

TEST_CASE("ConfigView: object members and unknown keys", "[filter][config_view]") {
  View v(kDoc);
  REQUIRE(v.view != nullptr);
  const sluice_host_t* h = v.host;
  sluice_str_t key{}, member{};
  CHECK(h->sluice_host_config_get_member(v.view, SLUICE_STR("/headers"), 1, &key, &member,
                                         &v.problem) == SLUICE_CONFIG_OK);
  CHECK(sv(key) == "x-b");
  CHECK(sv(member) == "/headers/x-b");
  CHECK(h->sluice_host_config_get_member(v.view, SLUICE_STR("/headers"), 2, &key, &member,
                                         &v.problem) == SLUICE_CONFIG_MISSING);
  CHECK(h->sluice_host_config_get_member(v.view, SLUICE_STR("/rules"), 0, &key, &member,
                                         &v.problem) == SLUICE_CONFIG_WRONG_TYPE);
  // A member name with "/" and "~" comes back escaped, ready for the getters.
  size_t count = 0;
  REQUIRE(h->sluice_host_config_get_length(v.view, SLUICE_STR(""), &count, nullptr) ==
          SLUICE_CONFIG_OK);
  bool saw_slash = false;
  for (size_t i = 0; i < count; i++) {
    REQUIRE(h->sluice_host_config_get_member(v.view, SLUICE_STR(""), i, &key, &member, nullptr) ==
            SLUICE_CONFIG_OK);
    if (sv(key) == "a/b") {
      saw_slash = true;
      CHECK(sv(member) == "/a~1b");
      sluice_str_t s{};
      CHECK(h->sluice_host_config_get_string(v.view, member, &s, nullptr) == SLUICE_CONFIG_OK);
      CHECK(sv(s) == "slash");
    }
  }
  CHECK(saw_slash);

  const char* const rule_keys[] = {"prefix", "weight"};
  CHECK(h->sluice_host_config_check_keys(v.view, SLUICE_STR("/rules/0"), rule_keys, 2,
                                         &v.problem) == SLUICE_CONFIG_OK);
  const char* const only_prefix[] = {"prefix"};
  CHECK(h->sluice_host_config_check_keys(v.view, SLUICE_STR("/rules/0"), only_prefix, 1,
                                         &v.problem) == SLUICE_CONFIG_UNKNOWN_KEY);
  CHECK(v.where() == "/rules/0/weight");
  CHECK(v.what() == "unknown key (expected prefix)");
  const char* const three[] = {"a", "b", "c"};
  CHECK(h->sluice_host_config_check_keys(v.view, SLUICE_STR("/headers"), three, 3, &v.problem) ==
        SLUICE_CONFIG_UNKNOWN_KEY);
  CHECK(v.where() == "/headers/x-a");
  CHECK(v.what() == "unknown key (expected a, b or c)");
  CHECK(h->sluice_host_config_check_keys(v.view, SLUICE_STR("/name"), three, 3, &v.problem) ==
        SLUICE_CONFIG_WRONG_TYPE);
  CHECK(h->sluice_host_config_check_keys(v.view, SLUICE_STR("/absent"), three, 3, &v.problem) ==
        SLUICE_CONFIG_MISSING);
}

TEST_CASE("ConfigView: text that is not JSON is a problem at the config's root",
          "[filter][config_view]") {
  for (const char* text : {"", "{", "{\"a\": 1} x", "{\"a\": 1, \"a\": 2}", "[1,]"}) {
    View v(text);
    INFO(text);
    CHECK(v.view == nullptr);
    CHECK(v.where().empty());
    CHECK(v.what().rfind("invalid JSON: ", 0) == 0);
  }
  // Without a config context there is no view (the functions are config-time only).
  sluice_config_problem_t p{sizeof(p), {nullptr, 0}, {nullptr, 0}};
  CHECK(filter::hostTable()->sluice_host_config_view(nullptr, SLUICE_STR("{}"), &p) == nullptr);
  CHECK(sv(p.message).find("only inside sluice_on_config_new") != std::string_view::npos);
}

TEST_CASE("Metric namespace: a filter cannot define a core metric or one under a core prefix",
          "[filter][metrics]") {
  filter::ConfigContext ctx;
  ctx.pointer = "/listeners/0/filters/2/config";
  const sluice_host_t* h = filter::hostTable();
  auto define = [&](std::string_view name) {
    return h->sluice_host_config_define_metric(reinterpret_cast<sluice_config_ctx_t*>(&ctx),
                                               SLUICE_METRIC_COUNTER, st(name), SLUICE_STR("help"),
                                               nullptr, 0, nullptr, 0);
  };
  // Every family of the core's table is refused, whatever was defined before.
  for (const stats::CoreMetricInfo& m : stats::kCoreMetrics) {
    INFO(m.name);
    ctx.errors.clear();
    CHECK(define(m.name) == SLUICE_METRIC_INVALID);
    REQUIRE(ctx.errors.size() == 1);
    CHECK(ctx.errors[0].pointer == "/listeners/0/filters/2/config");
    CHECK_THAT(ctx.errors[0].message,
               Catch::Contains(std::string("metric \"") + m.name + "\" is a core metric"));
  }
  ctx.errors.clear();
  CHECK(define("sluice_upstream_my_filter_total") == SLUICE_METRIC_INVALID);
  REQUIRE(ctx.errors.size() == 1);
  CHECK_THAT(ctx.errors[0].message, Catch::Contains("namespace \"sluice_upstream_\""));
  // A filter's own namespace is fine.
  ctx.errors.clear();
  CHECK(define("sluice_my_filter_requests_total") != SLUICE_METRIC_INVALID);
  CHECK(define("acme_widgets_total") != SLUICE_METRIC_INVALID);
  CHECK(ctx.errors.empty());
  // The reserved prefixes are derived from the table.
  CHECK(stats::reservedPrefixOf("sluice_downstream_requests_total") == "sluice_downstream_");
  CHECK(stats::reservedMetricReason("sluice_server_uptime_seconds").find("sluice_server_") !=
        std::string::npos);
  CHECK(stats::reservedMetricReason("sluice_ratelimit_limited_total").empty());
}
