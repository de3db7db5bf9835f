#include "core/stats/registry.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

using namespace sluice::stats;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("Stats: a counter records and renders", "[stats]") {
  Registry r;
  std::string error;
  uint32_t id = r.defineCounter("sluice_test_requests_total", "Requests seen",
                                {{"listener", "web"}, {"code", "2xx"}}, &error);
  REQUIRE(id != kInvalidId);
  CHECK(error.empty());
  r.add(id, 1);
  r.add(id, 2.5);
  CHECK(r.value(id) == 3.5);
  const std::string text = r.renderPrometheus();
  CHECK(text == "# HELP sluice_test_requests_total Requests seen\n"
                "# TYPE sluice_test_requests_total counter\n"
                "sluice_test_requests_total{listener=\"web\",code=\"2xx\"} 3.5\n");
}

TEST_CASE("Stats: a metric without labels renders without braces", "[stats]") {
  Registry r;
  uint32_t g = r.defineGauge("sluice_test_ready", "Ready", {});
  r.set(g, 1);
  CHECK(contains(r.renderPrometheus(), "\nsluice_test_ready 1\n"));
}

TEST_CASE("Stats: the same family and labels give the same id", "[stats]") {
  Registry r;
  uint32_t a = r.defineCounter("sluice_test_total", "h", {{"cluster", "a"}, {"code", "2xx"}});
  uint32_t b =
      r.defineCounter("sluice_test_total", "other help", {{"cluster", "b"}, {"code", "2xx"}});
  uint32_t a2 = r.defineCounter("sluice_test_total", "h", {{"cluster", "a"}, {"code", "2xx"}});
  uint32_t a3 = r.defineCounter("sluice_test_total", "h", {{"code", "2xx"}, {"cluster", "a"}});
  REQUIRE(a != kInvalidId);
  REQUIRE(b != kInvalidId);
  CHECK(a != b);
  CHECK(a2 == a);
  CHECK(a3 == a);
  CHECK(r.seriesCount() == 2);
  r.add(a, 1);
  r.add(a3, 1);
  CHECK(r.value(a) == 2);
  SECTION("the first help text stays") {
    const std::string text = r.renderPrometheus();
    CHECK(contains(text, "# HELP sluice_test_total h\n"));
    CHECK_FALSE(contains(text, "other help"));
  }
  SECTION("histograms with the same labels and no bounds share a series") {
    uint32_t h1 = r.defineHistogram("sluice_test_seconds", "h", {{"x", "1"}}, {1, 2});
    uint32_t h2 = r.defineHistogram("sluice_test_seconds", "h", {{"x", "1"}}, {});
    uint32_t h3 = r.defineHistogram("sluice_test_seconds", "h", {{"x", "2"}}, {});
    CHECK(h1 == h2);
    CHECK(h3 != h1);
    CHECK(r.histogramValue(h3).bounds == std::vector<double>{1, 2});
  }
}

TEST_CASE("Stats: a type clash is an error", "[stats]") {
  Registry r;
  REQUIRE(r.defineCounter("sluice_test_total", "h", {{"a", "1"}}) != kInvalidId);
  std::string error;
  SECTION("gauge over counter") {
    CHECK(r.defineGauge("sluice_test_total", "h", {{"a", "1"}}, &error) == kInvalidId);
    CHECK(error == "metric \"sluice_test_total\" is already defined as a counter");
  }
  SECTION("histogram over counter") {
    CHECK(r.defineHistogram("sluice_test_total", "h", {{"a", "2"}}, {}, &error) == kInvalidId);
    CHECK(contains(error, "already defined as a counter"));
  }
  SECTION("no error pointer") {
    CHECK(r.defineGauge("sluice_test_total", "h", {{"a", "1"}}) == kInvalidId);
  }
}

TEST_CASE("Stats: a family keeps its label names", "[stats]") {
  Registry r;
  REQUIRE(r.defineCounter("sluice_test_total", "h", {{"a", "1"}, {"b", "1"}}) != kInvalidId);
  std::string error;
  CHECK(r.defineCounter("sluice_test_total", "h", {{"a", "1"}}, &error) == kInvalidId);
  CHECK(error == "metric \"sluice_test_total\" is already defined with labels {a, b}");
  CHECK(r.defineCounter("sluice_test_total", "h", {{"a", "1"}, {"c", "1"}}, &error) == kInvalidId);
  CHECK(r.defineCounter("sluice_test_total", "h", {{"a", "1"}, {"b", "1"}, {"c", "1"}}, &error) ==
        kInvalidId);
}

TEST_CASE("Stats: invalid names are errors", "[stats]") {
  Registry r;
  std::string error;
  SECTION("metric name") {
    CHECK(r.defineCounter("bad-name", "h", {}, &error) == kInvalidId);
    CHECK(error == "invalid metric name \"bad-name\"");
    CHECK(r.defineGauge("", "h", {}, &error) == kInvalidId);
    CHECK(r.defineHistogram("9lives", "h", {}, {}, &error) == kInvalidId);
  }
  SECTION("label name") {
    CHECK(r.defineCounter("sluice_test_total", "h", {{"bad-label", "x"}}, &error) == kInvalidId);
    CHECK(error == "invalid label name \"bad-label\"");
    CHECK(r.defineCounter("sluice_test_total", "h", {{"__name__", "x"}}, &error) == kInvalidId);
    CHECK(r.defineCounter("sluice_test_total", "h", {{"", "x"}}, &error) == kInvalidId);
  }
  SECTION("a label given twice") {
    CHECK(r.defineCounter("sluice_test_total", "h", {{"a", "x"}, {"a", "y"}}, &error) ==
          kInvalidId);
    CHECK(error == "label \"a\" is given twice");
  }
  SECTION("le in a histogram") {
    CHECK(r.defineHistogram("sluice_test_seconds", "h", {{"le", "1"}}, {}, &error) == kInvalidId);
    CHECK(contains(error, "reserved"));
    CHECK(r.defineCounter("sluice_test_total", "h", {{"le", "1"}}, &error) != kInvalidId);
  }
  CHECK(r.renderPrometheus().find("bad") == std::string::npos);
}

TEST_CASE("Stats: histogram bounds are checked", "[stats]") {
  Registry r;
  std::string error;
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(r.defineHistogram("sluice_a_seconds", "h", {}, {1, 1}, &error) == kInvalidId);
  CHECK(error == "histogram bounds must be strictly ascending");
  CHECK(r.defineHistogram("sluice_a_seconds", "h", {}, {2, 1}, &error) == kInvalidId);
  CHECK(r.defineHistogram("sluice_a_seconds", "h", {}, {1, nan}, &error) == kInvalidId);
  CHECK(r.defineHistogram("sluice_a_seconds", "h", {}, {-inf, 1}, &error) == kInvalidId);
  CHECK(r.defineHistogram("sluice_a_seconds", "h", {}, std::vector<double>(300, 0), &error) ==
        kInvalidId);
  SECTION("a trailing +Inf is implied") {
    uint32_t id = r.defineHistogram("sluice_a_seconds", "h", {}, {1, 2, inf}, &error);
    REQUIRE(id != kInvalidId);
    CHECK(r.histogramValue(id).bounds == std::vector<double>{1, 2});
  }
  SECTION("other bounds for an existing family") {
    REQUIRE(r.defineHistogram("sluice_a_seconds", "h", {{"x", "1"}}, {1, 2}) != kInvalidId);
    CHECK(r.defineHistogram("sluice_a_seconds", "h", {{"x", "2"}}, {1, 3}, &error) == kInvalidId);
    CHECK(error == "metric \"sluice_a_seconds\" is already defined with other buckets");
  }
  SECTION("default bounds") {
    uint32_t id = r.defineHistogram("sluice_a_seconds", "h", {}, {});
    CHECK(r.histogramValue(id).bounds == Registry::defaultLatencyBounds());
    CHECK(Registry::defaultLatencyBounds().front() == 0.0005);
    CHECK(Registry::defaultLatencyBounds().back() == 10);
    CHECK(Registry::defaultLatencyBounds().size() == 14);
  }
}

TEST_CASE("Stats: sample names of different families may not collide", "[stats]") {
  Registry r;
  std::string error;
  REQUIRE(r.defineHistogram("sluice_req", "h", {}, {}) != kInvalidId);
  CHECK(r.defineCounter("sluice_req_count", "h", {}, &error) == kInvalidId);
  CHECK(error == "metric \"sluice_req_count\" collides with metric \"sluice_req\" (sample name "
                 "\"sluice_req_count\")");
  CHECK(r.defineGauge("sluice_req_sum", "h", {}, &error) == kInvalidId);
  CHECK(r.defineHistogram("sluice_req_bucket", "h", {}, {}, &error) == kInvalidId);
  REQUIRE(r.defineCounter("sluice_x_sum", "h", {}) != kInvalidId);
  CHECK(r.defineHistogram("sluice_x", "h", {}, {}, &error) == kInvalidId);
  CHECK(contains(error, "collides with metric \"sluice_x_sum\""));
}

TEST_CASE("Stats: label values and help are escaped", "[stats]") {
  Registry r;
  uint32_t id = r.defineCounter("sluice_test_total", "Help with \\ and\nnewline",
                                {{"path", "C:\\dir \"quoted\"\nline"}});
  r.add(id, 1);
  const std::string text = r.renderPrometheus();
  CHECK(contains(text, "# HELP sluice_test_total Help with \\\\ and\\nnewline\n"));
  CHECK(contains(text, "sluice_test_total{path=\"C:\\\\dir \\\"quoted\\\"\\nline\"} 1\n"));
}

TEST_CASE("Stats: histogram buckets are cumulative and end in +Inf", "[stats]") {
  Registry r;
  uint32_t id =
      r.defineHistogram("sluice_test_seconds", "Latency", {{"cluster", "api"}}, {0.125, 0.5, 1});
  REQUIRE(id != kInvalidId);
  for (double v : {0.0625, 0.125, 0.25, 0.5, 0.75, 1.0, 3.0, 100.0}) {
    r.observe(id, v);
  }
  HistogramValue h = r.histogramValue(id);
  CHECK(h.buckets == std::vector<uint64_t>{2, 4, 6, 8}); // a value on a bound counts in it
  CHECK(h.count == 8);
  CHECK(h.sum == 105.6875);
  CHECK(r.value(id) == 8);
  const std::string text = r.renderPrometheus();
  CHECK(contains(text, "# TYPE sluice_test_seconds histogram\n"
                       "sluice_test_seconds_bucket{cluster=\"api\",le=\"0.125\"} 2\n"
                       "sluice_test_seconds_bucket{cluster=\"api\",le=\"0.5\"} 4\n"
                       "sluice_test_seconds_bucket{cluster=\"api\",le=\"1\"} 6\n"
                       "sluice_test_seconds_bucket{cluster=\"api\",le=\"+Inf\"} 8\n"
                       "sluice_test_seconds_sum{cluster=\"api\"} 105.6875\n"
                       "sluice_test_seconds_count{cluster=\"api\"} 8\n"));
  SECTION("without labels") {
    uint32_t plain = r.defineHistogram("sluice_plain_seconds", "p", {}, {1});
    r.observe(plain, 0.5);
    const std::string t = r.renderPrometheus();
    CHECK(contains(t, "sluice_plain_seconds_bucket{le=\"1\"} 1\n"
                      "sluice_plain_seconds_bucket{le=\"+Inf\"} 1\n"
                      "sluice_plain_seconds_sum 0.5\n"
                      "sluice_plain_seconds_count 1\n"));
  }
  SECTION("non-finite observations are ignored") {
    r.observe(id, std::numeric_limits<double>::quiet_NaN());
    r.observe(id, std::numeric_limits<double>::infinity());
    CHECK(r.histogramValue(id).count == 8);
  }
}

TEST_CASE("Stats: gauges are set and moved from any thread's view", "[stats]") {
  Registry r;
  uint32_t g = r.defineGauge("sluice_test_connections_active", "Open", {{"listener", "web"}});
  r.add(g, 5);
  r.add(g, -2);
  CHECK(r.value(g) == 3);
  r.set(g, -7.5);
  CHECK(r.value(g) == -7.5);
  r.set(g, std::numeric_limits<double>::quiet_NaN());
  CHECK(std::isnan(r.value(g)));
  CHECK(contains(r.renderPrometheus(), "sluice_test_connections_active{listener=\"web\"} NaN\n"));
}

TEST_CASE("Stats: counters only go up", "[stats]") {
  Registry r;
  uint32_t c = r.defineCounter("sluice_test_total", "h", {});
  r.add(c, 2);
  r.add(c, -1);
  r.add(c, std::numeric_limits<double>::quiet_NaN());
  r.add(c, std::numeric_limits<double>::infinity());
  r.add(c, 0.25);
  CHECK(r.value(c) == 2.25);
}

TEST_CASE("Stats: unknown ids and calls of the wrong kind are ignored", "[stats]") {
  Registry r;
  uint32_t c = r.defineCounter("sluice_c_total", "h", {});
  uint32_t g = r.defineGauge("sluice_g", "h", {});
  uint32_t h = r.defineHistogram("sluice_h_seconds", "h", {}, {1});
  r.add(kInvalidId, 1);
  r.set(kInvalidId, 1);
  r.observe(kInvalidId, 1);
  r.add(12345, 1);
  r.set(c, 10);
  r.observe(c, 10);
  r.observe(g, 10);
  r.add(h, 10);
  r.set(h, 10);
  CHECK(r.value(c) == 0);
  CHECK(r.value(g) == 0);
  CHECK(r.value(h) == 0);
  CHECK(r.value(kInvalidId) == 0);
  CHECK(r.histogramValue(c).buckets.empty());
  CHECK(r.histogramValue(kInvalidId).bounds.empty());
}

TEST_CASE("Stats: families render sorted by name, series by label values", "[stats]") {
  Registry r;
  r.defineCounter("sluice_zeta_total", "z", {});
  r.defineCounter("sluice_alpha_total", "a", {{"cluster", "b"}});
  r.defineCounter("sluice_alpha_total", "a", {{"cluster", "a"}});
  r.defineGauge("sluice_mid", "m", {});
  const std::string text = r.renderPrometheus();
  size_t alpha = text.find("# HELP sluice_alpha_total");
  size_t mid = text.find("# HELP sluice_mid");
  size_t zeta = text.find("# HELP sluice_zeta_total");
  CHECK(alpha < mid);
  CHECK(mid < zeta);
  CHECK(text.find("cluster=\"a\"") < text.find("cluster=\"b\""));
  CHECK(r.renderPrometheus() == text);
}

TEST_CASE("Stats: many series across blocks keep their own cells", "[stats]") {
  Registry r;
  std::vector<uint32_t> counters;
  std::vector<uint32_t> histograms;
  for (int i = 0; i < 3000; i++) {
    const std::string cluster = "c" + std::to_string(i);
    counters.push_back(r.defineCounter("sluice_test_total", "h", {{"cluster", cluster}}));
    histograms.push_back(r.defineHistogram("sluice_test_seconds", "h", {{"cluster", cluster}}, {}));
  }
  for (int i = 0; i < 3000; i++) {
    r.add(counters[i], i);
    for (int k = 0; k <= i % 3; k++) {
      r.observe(histograms[i], 0.001 * i);
    }
  }
  for (int i = 0; i < 3000; i += 97) {
    CHECK(r.value(counters[i]) == i);
    HistogramValue h = r.histogramValue(histograms[i]);
    CHECK(h.count == static_cast<uint64_t>(i % 3 + 1));
    CHECK(h.buckets.size() == 15);
  }
  CHECK(r.seriesCount() == 6000);
}

TEST_CASE("Stats: the global registry is one instance", "[stats]") {
  CHECK(&Registry::global() == &Registry::global());
  std::string error;
  uint32_t id = Registry::global().defineCounter("sluice_stats_test_global_total", "t", {}, &error);
  REQUIRE(id != kInvalidId);
  double before = Registry::global().value(id);
  Registry::global().add(id, 1);
  CHECK(Registry::global().value(id) == before + 1);
}

TEST_CASE("Stats: a registry destroyed before this thread exits leaves no dangling shard",
          "[stats]") {
  for (int round = 0; round < 3; round++) {
    Registry r;
    uint32_t c = r.defineCounter("sluice_test_total", "h", {});
    uint32_t h = r.defineHistogram("sluice_test_seconds", "h", {}, {});
    r.add(c, round + 1);
    r.observe(h, 0.01);
    CHECK(r.value(c) == round + 1);
    CHECK(r.histogramValue(h).count == 1);
  }
}
