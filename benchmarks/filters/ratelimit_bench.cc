// BM_Ratelimit_*: the ratelimit filter through its C ABI on the in-memory fake host (figures
// include the fake host's header lookups): a local allowed decision over 10,000 keys, a local
// 429, the bare sharded store under 1 and 2 threads, and a Redis round trip against a real
// redis-server (one check at a time, and 64 pipelined checks per iteration).

#include "filters/ratelimit/local_store.h"
#include "filters/ratelimit/ratelimit_filter.h"
#include "sluice/filter.h"
#include "test/filters/common/fake_host.h"

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sluice::testing {
namespace {

using filters::ratelimit::KeyHash;
using filters::ratelimit::Limit;
using filters::ratelimit::LocalStore;

sluice_stream_t* g_resumed = nullptr;
size_t g_resumes = 0;

struct Ratelimit {
  FakeHost host;
  FakeConfigCtx ctx;
  FakeWorker worker;
  sluice_host_t table;
  const sluice_filter_descriptor_t* desc = nullptr;
  void* config = nullptr;
  void* state = nullptr;
  explicit Ratelimit(const std::string& json) {
    table = *host.table();
    table.sluice_host_resume = [](sluice_stream_t* s, sluice_direction_t) {
      g_resumed = s;
      g_resumes++;
    };
    desc = sluice_builtin_ratelimit_init(&table, SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR)
               ->filters[0];
    ctx.name = "ratelimit";
    config = desc->sluice_on_config_new(&table, ctx.handle(), {json.data(), json.size()});
    state = config != nullptr ? desc->sluice_on_worker_new(config, worker.handle()) : nullptr;
  }
  ~Ratelimit() {
    if (config != nullptr) {
      desc->sluice_on_worker_destroy(config, state);
      desc->sluice_on_config_destroy(config);
    }
  }
};

FakeStream apiRequest(FakeWorker& w, const std::string& key) {
  FakeStream s;
  s.worker = &w;
  s.request_headers = {{":method", "GET"},
                       {":path", "/api/v1/items"},
                       {":authority", "api.example.com"},
                       {"user-agent", "Mozilla/5.0"},
                       {"x-api-key", key}};
  return s;
}

void BM_Ratelimit_LocalAllowed(benchmark::State& state) {
  Ratelimit r(R"({"rules": [{"match": {"prefix": "/api"}, "key": {"header": "x-api-key"},
    "requests_per_minute": 60000000, "burst": 1000000}]})");
  std::vector<FakeStream> streams;
  for (int i = 0; i < 10000; i++) {
    streams.push_back(apiRequest(r.worker, "key-" + std::to_string(i)));
  }
  size_t i = 0;
  for (auto _ : state) {
    FakeStream& s = streams[i++ % streams.size()];
    void* f = r.desc->sluice_on_stream_new(r.config, r.state, s.handle());
    benchmark::DoNotOptimize(r.desc->sluice_on_request_headers(f, s.handle(), true));
    r.desc->sluice_on_stream_destroy(f);
  }
}
BENCHMARK(BM_Ratelimit_LocalAllowed);

void BM_Ratelimit_Local429(benchmark::State& state) {
  Ratelimit r(R"({"rules": [{"key": {"header": "x-api-key"}, "requests_per_minute": 1,
    "burst": 1}], "response_headers": true})");
  FakeStream s = apiRequest(r.worker, "hot");
  s.local_replies.reserve(1 << 20);
  for (auto _ : state) {
    if (s.local_replies.size() == s.local_replies.capacity()) {
      s.local_replies.clear();
    }
    void* f = r.desc->sluice_on_stream_new(r.config, r.state, s.handle());
    benchmark::DoNotOptimize(r.desc->sluice_on_request_headers(f, s.handle(), true));
    r.desc->sluice_on_stream_destroy(f);
  }
}
BENCHMARK(BM_Ratelimit_Local429);

void BM_Ratelimit_StoreConsume(benchmark::State& state) {
  static LocalStore* store = nullptr;
  static std::vector<KeyHash> keys;
  if (state.thread_index() == 0) {
    store = new LocalStore(100000);
    keys.clear();
    for (int i = 0; i < 10000; i++) {
      keys.push_back(store->hash("key-" + std::to_string(i)));
    }
  }
  const Limit limit{1000000, 60000000};
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  uint64_t now = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(store->consume(keys[i++ % keys.size()], limit, now++ / 1000));
  }
  if (state.thread_index() == 0) {
    delete store;
    store = nullptr;
  }
}
BENCHMARK(BM_Ratelimit_StoreConsume)->Threads(1)->Threads(2);

// --- Redis ------------------------------------------------------------------------------------

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct RedisProcess {
  int port = freePort();
  pid_t pid = -1;
  bool ready = false;
  RedisProcess() {
    const std::string p = std::to_string(port);
    pid = ::fork();
    if (pid == 0) {
      int null_fd = ::open("/dev/null", O_WRONLY);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 500 && !ready; i++) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ready = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      ::close(fd);
      if (!ready) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  ~RedisProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

void redisRoundTrip(benchmark::State& state, size_t depth) {
  RedisProcess redis;
  if (!redis.ready) {
    state.SkipWithError("redis-server did not start");
    return;
  }
  Ratelimit r(R"({"rules": [{"key": {"header": "x-api-key"}, "requests_per_minute": 60000000,
    "burst": 1000000}], "backend": {"redis": {"address": "127.0.0.1:)" +
              std::to_string(redis.port) + R"(", "timeout_ms": 1000}}})");
  std::vector<FakeStream> streams;
  for (size_t i = 0; i < depth; i++) {
    streams.push_back(apiRequest(r.worker, "key-" + std::to_string(i)));
  }
  std::vector<void*> filters(depth);
  auto batch = [&] {
    const size_t before = g_resumes;
    for (size_t i = 0; i < depth; i++) {
      filters[i] = r.desc->sluice_on_stream_new(r.config, r.state, streams[i].handle());
      r.desc->sluice_on_request_headers(filters[i], streams[i].handle(), true);
    }
    while (g_resumes - before < depth) {
      r.worker.pollIo(100);
    }
    for (size_t i = 0; i < depth; i++) {
      r.desc->sluice_on_stream_destroy(filters[i]);
    }
  };
  batch(); // connect and load the script
  for (auto _ : state) {
    batch();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * depth));
  if (r.host.metric("sluice_ratelimit_redis_errors_total") != 0) {
    state.SkipWithError("Redis errors during the run");
  }
}

void BM_Ratelimit_RedisRoundTrip(benchmark::State& state) {
  redisRoundTrip(state, 1);
}
BENCHMARK(BM_Ratelimit_RedisRoundTrip)->UseRealTime();

void BM_Ratelimit_RedisPipelined64(benchmark::State& state) {
  redisRoundTrip(state, 64);
}
BENCHMARK(BM_Ratelimit_RedisPipelined64)->UseRealTime();

} // namespace
} // namespace sluice::testing

// A flood of never-seen keys into a store capped at 10,000 keys whose buckets stay live (slow
// refill): every request must make room. Was a sweep of the whole shard plus an LRU scan under
// the shard lock per new key; now O(1).
void BM_Ratelimit_StoreFloodNewKeys(benchmark::State& state) {
  using namespace sluice::filters::ratelimit;
  LocalStore store(10000);
  const Limit limit{10, 1}; // one token a minute: nothing refills during the run
  uint64_t i = 0;
  for (auto _ : state) {
    KeyHash k{(i * 0x9E3779B97F4A7C15ull) | 1, i};
    benchmark::DoNotOptimize(store.consume(k, limit, i / 1000));
    i++;
  }
  state.counters["cap_hits"] = static_cast<double>(store.capHits());
}
BENCHMARK(BM_Ratelimit_StoreFloodNewKeys);
