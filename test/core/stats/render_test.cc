// The two renderings read back: /stats JSON through a JSON parser, the text exposition through
// promtool (apt package prometheus, a test dependency).
#include "core/stats/registry.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

using namespace sluice::stats;

namespace {

// The SPEC §5 families with a few series each, plus awkward label values.
void defineSampleMetrics(Registry& r) {
  const char* codes[] = {"2xx", "4xx", "5xx"};
  for (const char* listener : {"web", "admin"}) {
    for (const char* code : codes) {
      r.add(r.defineCounter("sluice_downstream_requests_total", "Requests received",
                            {{"listener", listener}, {"code", code}}),
            3);
    }
    uint32_t d = r.defineHistogram("sluice_downstream_request_duration_seconds", "Request duration",
                                   {{"listener", listener}}, {});
    r.observe(d, 0.0004);
    r.observe(d, 0.02);
    r.observe(d, 30);
    r.set(r.defineGauge("sluice_downstream_connections_active", "Open connections",
                        {{"listener", listener}}),
          4);
  }
  for (const char* cluster : {"api", "svc"}) {
    r.add(r.defineCounter("sluice_upstream_requests_total", "Upstream responses",
                          {{"cluster", cluster}, {"code", "2xx"}}),
          1);
    r.observe(r.defineHistogram("sluice_upstream_request_duration_seconds", "Upstream time",
                                {{"cluster", cluster}}, {}),
              0.003);
    r.set(r.defineGauge("sluice_upstream_endpoint_healthy", "Endpoint health",
                        {{"cluster", cluster}, {"endpoint", "127.0.0.1:3001"}}),
          1);
    for (const char* kind : {"connect_failure", "timeout", "reset", "overflow"}) {
      r.defineCounter("sluice_upstream_errors_total", "Upstream failures",
                      {{"cluster", cluster}, {"kind", kind}});
    }
  }
  r.add(r.defineCounter("sluice_jwt_authn_denied_total", "JWT denials",
                        {{"filter", "jwt"}, {"reason", "expired"}}),
        2);
  r.add(r.defineCounter("sluice_ai_agent_requests_total", "AI agent requests",
                        {{"provider", "Open\"AI\\"}, {"agent", "GPT\nBot \xff\xfe"}}),
        1);
  r.set(r.defineGauge("sluice_config_generation", "Config generation \\ with\nnewline", {}), 7);
  r.add(r.defineCounter("sluice_config_reloads_total", "Reloads", {{"result", "success"}}), 0.5);
  r.set(r.defineGauge("sluice_server_ready", "Ready", {}), 1);
}

} // namespace

TEST_CASE("Stats: renderJson parses as the /stats shape", "[stats]") {
  Registry r;
  defineSampleMetrics(r);
  nlohmann::json doc;
  REQUIRE_NOTHROW(doc = nlohmann::json::parse(r.renderJson()));
  REQUIRE(doc.is_object());
  REQUIRE(doc["metrics"].is_array());
  CHECK(doc["metrics"].size() == r.seriesCount());

  bool saw_histogram = false;
  bool saw_agent = false;
  std::string previous;
  for (const auto& m : doc["metrics"]) {
    REQUIRE(m["name"].is_string());
    REQUIRE(m["labels"].is_object());
    const std::string name = m["name"];
    CHECK(previous <= name);
    previous = name;
    const std::string type = m["type"];
    if (type == "histogram") {
      CHECK_FALSE(m.contains("value"));
      const auto& buckets = m["buckets"];
      REQUIRE(buckets.size() == Registry::defaultLatencyBounds().size() + 1);
      CHECK(buckets.back()["le"] == "+Inf");
      CHECK(buckets.front()["le"] == 0.0005);
      CHECK(buckets.back()["count"] == m["count"]);
      for (size_t i = 1; i < buckets.size(); i++) {
        CHECK(buckets[i]["count"].get<double>() >= buckets[i - 1]["count"].get<double>());
      }
      if (name == "sluice_downstream_request_duration_seconds" &&
          m["labels"]["listener"] == "web") {
        saw_histogram = true;
        CHECK(m["count"] == 3);
        CHECK(buckets[0]["count"] == 1);  // 0.0004 <= 0.0005
        CHECK(buckets[5]["count"] == 2);  // 0.02 <= 0.025
        CHECK(buckets[13]["count"] == 2); // 30 > 10
        CHECK(m["sum"].get<double>() == Approx(30.0204));
      }
    } else {
      CHECK((type == "counter" || type == "gauge"));
      CHECK(m["value"].is_number());
    }
    if (name == "sluice_ai_agent_requests_total") {
      saw_agent = true;
      CHECK(m["labels"]["provider"] == "Open\"AI\\");
      CHECK(m["labels"]["agent"] == "GPT\nBot \xef\xbf\xbd\xef\xbf\xbd");
      CHECK(m["value"] == 1);
    }
    if (name == "sluice_config_reloads_total") {
      CHECK(m["value"] == 0.5);
    }
  }
  CHECK(saw_histogram);
  CHECK(saw_agent);
}

TEST_CASE("Stats: an empty registry renders empty documents", "[stats]") {
  Registry r;
  CHECK(r.renderPrometheus().empty());
  auto doc = nlohmann::json::parse(r.renderJson());
  CHECK(doc["metrics"].empty());
}

TEST_CASE("Stats: the text exposition passes promtool check metrics", "[stats]") {
  const char* promtool = "/usr/bin/promtool";
  // A test dependency (tools/install-deps.sh installs it): missing means failing, not skipping.
  if (access(promtool, X_OK) != 0) {
    FAIL("promtool not found at /usr/bin/promtool: install Debian's prometheus package");
  }
  Registry r;
  defineSampleMetrics(r);
  const std::string text = r.renderPrometheus();
  char path[] = "/tmp/sluice_stats_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::ofstream out(path);
    out << text;
  }
  const std::string command = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[512];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) {
    output.append(buffer, n);
  }
  int status = pclose(pipe);
  unlink(path);
  INFO(text);
  INFO(output);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(output.empty());
}
