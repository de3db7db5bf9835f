// BM_Router_Match: virtual host + route selection over 1, 100 and 10,000 routes, with the
// matching route last (the worst case for first-match-wins) and half of the routes regexes.
#include "filters/router/config.h"

#include "filters/common/config_reader.h"

#include <string>

#include <benchmark/benchmark.h>

using namespace sluice::filters::router;

namespace {

std::unique_ptr<RouteTable> table(int n, bool regex) {
  std::string routes;
  for (int i = 0; i < n; i++) {
    routes += i ? "," : "";
    if (regex && i % 2 == 0) {
      routes +=
          R"({"match": {"regex": "^/r)" + std::to_string(i) + R"(/[0-9]+$"}, "cluster": "a"})";
    } else {
      routes += R"({"match": {"prefix": "/p)" + std::to_string(i) + R"(/"}, "cluster": "a"})";
    }
  }
  sluice::filters::common::ConfigReader reader;
  return RouteTable::parse(
      R"({"virtual_hosts": [{"name": "v", "domains": ["api.example.com", "*"], "routes": [)" +
          routes + "]}]}",
      [](std::string_view) { return true; }, reader);
}

struct NoHeaders {
  bool operator()(const std::string&, std::string_view*) const { return false; }
};

void run(benchmark::State& state, bool regex) {
  int n = static_cast<int>(state.range(0));
  auto t = table(n, regex);
  auto scratch = t->newScratch();
  std::string path = "/p" + std::to_string(n - 1) + "/items/42";
  for (auto _ : state) {
    const VirtualHost* vh = t->findVirtualHost("api.example.com:443");
    const Route* r = t->match(*vh, "GET", path, NoHeaders{}, *scratch);
    benchmark::DoNotOptimize(r);
  }
}

void BM_Router_MatchPrefix(benchmark::State& state) {
  run(state, false);
}
void BM_Router_MatchMixedRegex(benchmark::State& state) {
  run(state, true);
}
BENCHMARK(BM_Router_MatchPrefix)->Arg(1)->Arg(100)->Arg(10000);
BENCHMARK(BM_Router_MatchMixedRegex)->Arg(2)->Arg(100)->Arg(10000);

} // namespace

// Virtual-host selection among N wildcard domains ("*.tI.example.com", half of them, and
// "hostI.*", the other half); the host matches the last suffix domain (the worst case for a
// scan in order).
void BM_Router_WildcardDomains(benchmark::State& state) {
  int n = static_cast<int>(state.range(0));
  std::string vhosts;
  for (int i = 0; i < n; i++) {
    std::string d =
        i % 2 == 0 ? "*.t" + std::to_string(i) + ".example.com" : "host" + std::to_string(i) + ".*";
    vhosts += R"({"name": "v)" + std::to_string(i) + R"(", "domains": [")" + d +
              R"("], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]},)";
  }
  sluice::filters::common::ConfigReader reader;
  auto t = RouteTable::parse(
      R"({"virtual_hosts": [)" + vhosts +
          R"({"name": "any", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "cluster": "a"}]}]})",
      [](std::string_view) { return true; }, reader);
  std::string host = "www.t" + std::to_string((n - 1) / 2 * 2) + ".example.com";
  for (auto _ : state) {
    benchmark::DoNotOptimize(t->findVirtualHost(host));
  }
}
BENCHMARK(BM_Router_WildcardDomains)->Arg(10)->Arg(10000);
