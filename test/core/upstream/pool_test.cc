#include "core/upstream/pool.h"

#include <catch2/catch.hpp>
#include <map>

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
  CHECK(longest_run < 5); // a naive weighted round robin sends 5 in a row
}

TEST_CASE("Pool: unavailable endpoints are skipped; none available gives -1", "[upstream]") {
  event::Dispatcher d;
  auto info =
      std::make_shared<upstream::ClusterInfo>(cluster({{"127.0.0.1:1", 1}, {"127.0.0.1:2", 1}}));
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
  auto info =
      std::make_shared<upstream::ClusterInfo>(cluster({{"127.0.0.1:1", 1}, {"127.0.0.1:2", 1}}));
  upstream::ClusterPool pool(d, info);
  for (int i = 0; i < 10; i++) {
    CHECK(pool.pickEndpoint(0) == 1);
    CHECK(pool.pickEndpoint(1) == 0);
  }
  info->endpoints()[1]->healthy = false;
  CHECK(pool.pickEndpoint(0) == 0); // the only one left
}

namespace {
config::ClusterConfig withPolicy(config::ClusterConfig c, config::LbPolicy p) {
  c.lb_policy = p;
  return c;
}
std::vector<std::pair<std::string, uint32_t>> endpoints(int n) {
  std::vector<std::pair<std::string, uint32_t>> v;
  for (int i = 0; i < n; i++) {
    v.emplace_back("127.0.0." + std::to_string(i + 1) + ":80", 1);
  }
  return v;
}
} // namespace

TEST_CASE("Pool: random follows the weights", "[upstream]") {
  event::Dispatcher d;
  auto info = std::make_shared<upstream::ClusterInfo>(
      withPolicy(cluster({{"127.0.0.1:1", 3}, {"127.0.0.1:2", 1}}), config::LbPolicy::Random));
  upstream::ClusterPool pool(d, info);
  int a = 0;
  for (int i = 0; i < 20000; i++) {
    a += pool.pickEndpoint() == 0;
  }
  CHECK(a > 14000);
  CHECK(a < 16000);
}

TEST_CASE("Pool: least_request prefers the endpoint with fewer active requests", "[upstream]") {
  event::Dispatcher d;
  auto info = std::make_shared<upstream::ClusterInfo>(withPolicy(
      cluster({{"127.0.0.1:1", 1}, {"127.0.0.1:2", 1}}), config::LbPolicy::LeastRequest));
  upstream::ClusterPool pool(d, info);
  info->endpoints()[0]->active_requests = 50; // a slow endpoint piles up requests
  int slow = 0;
  for (int i = 0; i < 10000; i++) {
    slow += pool.pickEndpoint() == 0;
  }
  // The two choices are distinct endpoints, so with two endpoints the busy one never wins.
  CHECK(slow == 0);
  info->endpoints()[1]->healthy = false;
  CHECK(pool.pickEndpoint() == 0);
}

TEST_CASE("Pool: least_request compares two distinct endpoints", "[upstream]") {
  event::Dispatcher d;
  auto info = std::make_shared<upstream::ClusterInfo>(
      withPolicy(cluster(endpoints(3)), config::LbPolicy::LeastRequest));
  upstream::ClusterPool pool(d, info);
  std::map<int, int> counts;

  SECTION("equal loads spread over every endpoint") {
    for (int i = 0; i < 3000; i++) {
      counts[pool.pickEndpoint()]++;
    }
    for (int e = 0; e < 3; e++) {
      CHECK(counts[e] > 800);
    }
  }
  SECTION("the most loaded endpoint is never chosen, the least loaded one most often") {
    info->endpoints()[0]->active_requests = 10;
    info->endpoints()[1]->active_requests = 5;
    for (int i = 0; i < 3000; i++) {
      counts[pool.pickEndpoint()]++;
    }
    CHECK(counts[0] == 0);
    // Endpoint 2 wins every pair it is in (2 of the 3 pairs).
    CHECK(counts[2] > 1800);
    CHECK(counts[1] > 800);
  }
  SECTION("a retry still avoids the endpoint that failed") {
    info->endpoints()[1]->active_requests = 10;
    for (int i = 0; i < 100; i++) {
      CHECK(pool.pickEndpoint(2) == 0);
    }
  }
  SECTION("weights scale the load: twice the weight carries twice the requests") {
    auto weighted = std::make_shared<upstream::ClusterInfo>(withPolicy(
        cluster({{"127.0.0.1:1", 2}, {"127.0.0.1:2", 1}}), config::LbPolicy::LeastRequest));
    upstream::ClusterPool wp(d, weighted);
    weighted->endpoints()[1]->active_requests = 1;
    weighted->endpoints()[0]->active_requests = 2; // (2+1)/2 = 1.5 < (1+1)/1 = 2
    for (int i = 0; i < 100; i++) {
      CHECK(wp.pickEndpoint() == 0);
    }
    weighted->endpoints()[0]->active_requests = 4; // (4+1)/2 = 2.5 > 2
    for (int i = 0; i < 100; i++) {
      CHECK(wp.pickEndpoint() == 1);
    }
  }
}

TEST_CASE("Pool: consistent hashing keeps keys when an endpoint goes away", "[upstream]") {
  auto policy = GENERATE(config::LbPolicy::RingHash, config::LbPolicy::Maglev);
  event::Dispatcher d;
  const int n = 10;
  auto full = std::make_shared<upstream::ClusterInfo>(withPolicy(cluster(endpoints(n)), policy));
  auto fewer_eps = endpoints(n);
  fewer_eps.erase(fewer_eps.begin() + 3);
  auto fewer = std::make_shared<upstream::ClusterInfo>(withPolicy(cluster(fewer_eps), policy));
  upstream::ClusterPool pf(d, full), pl(d, fewer);
  int moved = 0, same_key_stable = 0;
  std::vector<int> per(n, 0);
  const int keys = 20000;
  for (int k = 0; k < keys; k++) {
    uint64_t h = upstream::hashKey("user-" + std::to_string(k));
    int a = pf.pickEndpoint(-1, h, true);
    int b = pl.pickEndpoint(-1, h, true);
    per[a]++;
    same_key_stable += pf.pickEndpoint(-1, h, true) == a;
    std::string addr_a = full->endpoints()[a]->address;
    std::string addr_b = fewer->endpoints()[b]->address;
    moved += addr_a != addr_b;
  }
  CHECK(same_key_stable == keys);
  // Only the removed endpoint's keys (about 1/N) move.
  CHECK(moved > keys / n / 2);
  CHECK(moved < keys / n * 2);
  for (int c : per) {
    CHECK(c > keys / n / 2); // every endpoint gets a fair share
  }
  // An unavailable endpoint is skipped without moving the other keys.
  full->endpoints()[5]->healthy = false;
  for (int k = 0; k < 2000; k++) {
    uint64_t h = upstream::hashKey("user-" + std::to_string(k));
    int e = pf.pickEndpoint(-1, h, true);
    CHECK(e != 5);
  }
}

TEST_CASE("Pool: round robin over many endpoints follows the weights from the schedule",
          "[upstream]") {
  event::Dispatcher d;
  std::vector<std::pair<std::string, uint32_t>> eps;
  for (int i = 0; i < 3000; i++) {
    eps.emplace_back("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":80",
                     static_cast<uint32_t>(1 + i % 3));
  }
  auto info = std::make_shared<upstream::ClusterInfo>(cluster(eps));
  REQUIRE(info->rrSchedule().size() == 6000); // 1000 × (1 + 2 + 3): precomputed
  upstream::ClusterPool pool(d, info);
  std::vector<int> counts(3000, 0);
  for (int i = 0; i < 12000; i++) {
    int ep = pool.pickEndpoint();
    REQUIRE(ep >= 0);
    counts[static_cast<size_t>(ep)]++;
  }
  for (int i = 0; i < 3000; i++) {
    REQUIRE(counts[static_cast<size_t>(i)] == 2 * (1 + i % 3));
  }
  // A long run of unavailable endpoints falls back to the scan and still finds the others.
  for (int i = 0; i < 2990; i++) {
    info->endpoints()[static_cast<size_t>(i)]->draining = true;
  }
  for (int i = 0; i < 50; i++) {
    int ep = pool.pickEndpoint();
    CHECK(ep >= 2990);
  }
}

TEST_CASE("Pool: weighted random draws follow the weights and skip unavailable endpoints",
          "[upstream]") {
  event::Dispatcher d;
  config::ClusterConfig cfg = cluster({{"127.0.0.1:1", 1}, {"127.0.0.1:2", 3}, {"127.0.0.1:3", 6}});
  cfg.lb_policy = config::LbPolicy::Random;
  auto info = std::make_shared<upstream::ClusterInfo>(cfg);
  upstream::ClusterPool pool(d, info);
  std::map<int, int> counts;
  for (int i = 0; i < 20000; i++) {
    counts[pool.pickEndpoint()]++;
  }
  CHECK(counts[0] > 1500);
  CHECK(counts[0] < 2500);
  CHECK(counts[1] > 5200);
  CHECK(counts[1] < 6800);
  CHECK(counts[2] > 11000);
  CHECK(counts[2] < 13000);
  info->endpoints()[2]->healthy = false;
  counts.clear();
  for (int i = 0; i < 4000; i++) {
    counts[pool.pickEndpoint()]++;
  }
  CHECK(counts.count(2) == 0);
  CHECK(counts[1] > counts[0] * 2);
}
