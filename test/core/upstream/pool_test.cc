#include <catch2/catch.hpp>

#include <map>

#include "core/upstream/pool.h"

using namespace sluice;

namespace {
config::ClusterConfig cluster(std::vector<std::pair<std::string, uint32_t>> eps) {
  config::ClusterConfig c;
  c.name = "c";
  for (auto& [a, w] : eps) {
    config::EndpointConfig e;
    std::string err;
    REQUIRE(config::parseAddress(a, e.address, err));
    e.weight = w;
    c.endpoints.push_back(e);
  }
  return c;
}
} // namespace

TEST_CASE("Pool: weighted round robin follows the weights without bursts", "[upstream]") {
  event::Dispatcher d;
  auto info = std::make_shared<upstream::ClusterInfo>(
      cluster({{"127.0.0.1:1", 5}, {"127.0.0.1:2", 1}, {"127.0.0.1:3", 1}}));
  upstream::ClusterPool pool(d, info);
  std::map<int, int> counts;
  int longest_run = 0, run = 0, prev = -1;
  for (int i = 0; i < 700; i++) {
    int ep = pool.pickEndpoint();
    REQUIRE(ep >= 0);
    counts[ep]++;
    run = ep == prev ? run + 1 : 1;
    prev = ep;
    longest_run = std::max(longest_run, run);
  }
  CHECK(counts[0] == 500);
  CHECK(counts[1] == 100);
  CHECK(counts[2] == 100);
  // Smooth: the heavy endpoint never gets its whole share in one burst.
  CHECK(longest_run < 5);  // a naive weighted round robin sends 5 in a row
}

TEST_CASE("Pool: unavailable endpoints are skipped; none available gives -1", "[upstream]") {
  event::Dispatcher d;
  auto info = std::make_shared<upstream::ClusterInfo>(
      cluster({{"127.0.0.1:1", 1}, {"127.0.0.1:2", 1}}));
  upstream::ClusterPool pool(d, info);
  info->endpoints()[0]->healthy = false;
  for (int i = 0; i < 10; i++) {
    CHECK(pool.pickEndpoint() == 1);
  }
  info->endpoints()[1]->draining = true;
  CHECK(pool.pickEndpoint() == -1);
}

TEST_CASE("Pool: a retry avoids the endpoint that just failed when another exists", "[upstream]") {
  event::Dispatcher d;
  auto info = std::make_shared<upstream::ClusterInfo>(
      cluster({{"127.0.0.1:1", 1}, {"127.0.0.1:2", 1}}));
  upstream::ClusterPool pool(d, info);
  for (int i = 0; i < 10; i++) {
    CHECK(pool.pickEndpoint(0) == 1);
    CHECK(pool.pickEndpoint(1) == 0);
  }
  info->endpoints()[1]->healthy = false;
  CHECK(pool.pickEndpoint(0) == 0);  // the only one left
}
