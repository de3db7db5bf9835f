#include "core/stats/exposition.h"
#include "core/stats/metric.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

using namespace sluice::stats;

namespace {

std::string value(double v) {
  std::string out;
  appendValue(out, v);
  return out;
}

std::string jsonNumber(double v) {
  std::string out;
  appendJsonNumber(out, v);
  return out;
}

} // namespace

TEST_CASE("Stats: metric names follow the Prometheus grammar", "[stats]") {
  auto [name, ok] = GENERATE(table<const char*, bool>({
      {"sluice_requests_total", true},
      {"a", true},
      {"_x", true},
      {"ns:sub:metric", true},
      {"A1_b2", true},
      {"", false},
      {"1abc", false},
      {"with-dash", false},
      {"with space", false},
      {"dot.name", false},
      {"caf\xc3\xa9", false},
  }));
  CAPTURE(name);
  CHECK(validMetricName(name) == ok);
}

TEST_CASE("Stats: label names follow the Prometheus grammar", "[stats]") {
  auto [name, ok] = GENERATE(table<const char*, bool>({
      {"cluster", true},
      {"_private", true},
      {"code2", true},
      {"", false},
      {"__reserved", false},
      {"2code", false},
      {"with:colon", false},
      {"with-dash", false},
  }));
  CAPTURE(name);
  CHECK(validLabelName(name) == ok);
}

TEST_CASE("Stats: ill-formed UTF-8 becomes U+FFFD", "[stats]") {
  const std::string r = "\xef\xbf\xbd";
  CHECK(sanitizeUtf8("plain ascii") == "plain ascii");
  CHECK(sanitizeUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(sanitizeUtf8("a\xff"
                     "b") == "a" + r + "b");
  CHECK(sanitizeUtf8("\xc0\xaf") == r + r);                 // overlong '/'
  CHECK(sanitizeUtf8("\xed\xa0\x80") == r + r + r);         // UTF-16 surrogate
  CHECK(sanitizeUtf8("\xf4\x90\x80\x80") == r + r + r + r); // above U+10FFFF
  CHECK(sanitizeUtf8("x\xe2\x82") == "x" + r + r);          // truncated at the end
  CHECK(sanitizeUtf8(std::string("a\0b", 3)) == std::string("a\0b", 3));
}

TEST_CASE("Stats: label values and help texts are escaped for the text format", "[stats]") {
  std::string label;
  appendLabelValue(label, "back\\slash \"quoted\"\nnext");
  CHECK(label == "back\\\\slash \\\"quoted\\\"\\nnext");
  std::string help;
  appendHelp(help, "a \\ and \"quotes\"\nline two");
  CHECK(help == "a \\\\ and \"quotes\"\\nline two");
}

TEST_CASE("Stats: JSON strings escape quotes, backslashes and control characters", "[stats]") {
  std::string out;
  appendJsonString(out, std::string("q\"b\\n\nt\tc\x01z\x7f", 12));
  CHECK(out == "\"q\\\"b\\\\n\\nt\\tc\\u0001z\\u007f\"");
}

TEST_CASE("Stats: sample values print as Prometheus writes them", "[stats]") {
  CHECK(value(0) == "0");
  CHECK(value(-0.0) == "0");
  CHECK(value(42) == "42");
  CHECK(value(-3) == "-3");
  CHECK(value(0.5) == "0.5");
  CHECK(value(0.0005) == "0.0005");
  CHECK(value(2.5) == "2.5");
  CHECK(value(1e20) == "1e+20");
  CHECK(value(9007199254740991.0) == "9007199254740991");
  CHECK(std::stod(value(0.1 + 0.2)) == 0.1 + 0.2);
  CHECK(value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
  CHECK(value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(jsonNumber(7) == "7");
  CHECK(jsonNumber(0.25) == "0.25");
  CHECK(jsonNumber(std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(jsonNumber(std::numeric_limits<double>::infinity()) == "null");
}

TEST_CASE("Stats: metric types have their Prometheus names", "[stats]") {
  CHECK(std::string(typeName(MetricType::Counter)) == "counter");
  CHECK(std::string(typeName(MetricType::Gauge)) == "gauge");
  CHECK(std::string(typeName(MetricType::Histogram)) == "histogram");
}
