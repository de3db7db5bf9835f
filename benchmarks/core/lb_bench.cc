// Endpoint selection per load-balancing policy over 3, 100 and 10,000 endpoints: what one pick
// costs a worker (ClusterPool::pickEndpoint, the data path's call), with mixed weights and,
// for the hashing policies, a different key per pick.
#include "core/event/dispatcher.h"
#include "core/upstream/pool.h"

#include <string>

#include <benchmark/benchmark.h>

namespace {

using namespace sluice;

std::shared_ptr<upstream::ClusterInfo> makeCluster(int n, config::LbPolicy policy, bool weighted) {
  config::ClusterConfig c;
  c.name = "bench";
  c.lb_policy = policy;
  for (int i = 0; i < n; i++) {
    config::EndpointConfig e;
    std::string err;
    std::string a = "10." + std::to_string(i / 65536) + "." + std::to_string((i / 256) % 256) +
                    "." + std::to_string(i % 256) + ":80";
    config::parseAddress(a, e.address, err);
    e.weight = weighted ? static_cast<uint32_t>(1 + i % 3) : 1;
    c.endpoints.push_back(e);
  }
  return std::make_shared<upstream::ClusterInfo>(c);
}

void pick(benchmark::State& state, config::LbPolicy policy, bool weighted) {
  event::Dispatcher d;
  auto info = makeCluster(static_cast<int>(state.range(0)), policy, weighted);
  upstream::ClusterPool pool(d, info);
  bool hashing = policy == config::LbPolicy::RingHash || policy == config::LbPolicy::Maglev;
  uint64_t key = 0x9e3779b97f4a7c15ull;
  for (auto _ : state) {
    key = key * 6364136223846793005ull + 1442695040888963407ull;
    int ep = pool.pickEndpoint(-1, hashing ? key : 0, hashing);
    benchmark::DoNotOptimize(ep);
  }
}

void BM_LB_RoundRobin(benchmark::State& s) {
  pick(s, config::LbPolicy::RoundRobin, false);
}
void BM_LB_RoundRobinWeighted(benchmark::State& s) {
  pick(s, config::LbPolicy::RoundRobin, true);
}
void BM_LB_LeastRequest(benchmark::State& s) {
  pick(s, config::LbPolicy::LeastRequest, true);
}
void BM_LB_Random(benchmark::State& s) {
  pick(s, config::LbPolicy::Random, true);
}
void BM_LB_RingHash(benchmark::State& s) {
  pick(s, config::LbPolicy::RingHash, true);
}
void BM_LB_Maglev(benchmark::State& s) {
  pick(s, config::LbPolicy::Maglev, true);
}

} // namespace

BENCHMARK(BM_LB_RoundRobin)->Arg(3)->Arg(100)->Arg(10000);
BENCHMARK(BM_LB_RoundRobinWeighted)->Arg(3)->Arg(100)->Arg(10000);
BENCHMARK(BM_LB_LeastRequest)->Arg(3)->Arg(100)->Arg(10000);
BENCHMARK(BM_LB_Random)->Arg(3)->Arg(100)->Arg(10000);
BENCHMARK(BM_LB_RingHash)->Arg(3)->Arg(100)->Arg(10000);
BENCHMARK(BM_LB_Maglev)->Arg(3)->Arg(100)->Arg(10000);
