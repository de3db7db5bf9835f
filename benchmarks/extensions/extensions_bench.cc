// The C++ SDK's dispatch cost against a plain C filter, and the example extensions loaded from
// their .so files (as sluice loads them), driven through the C ABI with the in-memory host of
// test/filters/common/fake_host.h. The host's own work (std::string header maps) is part of
// every figure: compare the rows with each other, not with the real data path.
//
// The modules are looked up next to this program: <build>/extensions/lib<name>.so.

#include "sluice/sdk/config.hpp"
#include "sluice/sdk/filter.hpp"
#include "test/filters/common/fake_host.h"

#include <string>

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

namespace {

using sluice::testing::FakeConfigCtx;
using sluice::testing::FakeHost;
using sluice::testing::FakeStream;
using sluice::testing::FakeWorker;
namespace sdk = sluice::sdk;

// ---- the same trivial filter twice: C descriptor and SDK ------------------------------------

sluice_status_t cHeaders(void*, sluice_stream_t*, bool) {
  return SLUICE_STATUS_CONTINUE;
}
void* cConfigNew(const sluice_host_t*, sluice_config_ctx_t*, sluice_str_t) {
  static int config;
  return &config;
}
void* cStreamNew(void* config, void*, sluice_stream_t*) {
  return config;
}
sluice_filter_descriptor_t makeCFilter() {
  sluice_filter_descriptor_t d{};
  d.size = sizeof(d);
  d.type = "c_noop";
  d.sluice_on_config_new = cConfigNew;
  d.sluice_on_stream_new = cStreamNew;
  d.sluice_on_request_headers = cHeaders;
  return d;
}
const sluice_filter_descriptor_t kCFilter = makeCFilter();

class NoopFilter : public sdk::Filter {
public:
  using Filter::Filter;
  sluice_status_t onRequestHeaders(bool) override { return sdk::kContinue; }
};
class NoopConfig {
public:
  static std::unique_ptr<NoopConfig> create(sdk::ConfigContext&) {
    return std::make_unique<NoopConfig>();
  }
  std::unique_ptr<NoopFilter> newFilter(sdk::Stream s) const {
    return std::make_unique<NoopFilter>(s);
  }
};

// One stream's worth of filter calls: new, request headers, destroy.
void runStream(benchmark::State& state, const sluice_filter_descriptor_t* d,
               const sluice_host_t* host, std::string_view config_json, FakeStream& s) {
  FakeConfigCtx ctx;
  void* config = d->sluice_on_config_new(host, ctx.handle(), sdk::toStr(config_json));
  if (config == nullptr) {
    state.SkipWithError("config refused");
    return;
  }
  for (auto _ : state) {
    void* f = d->sluice_on_stream_new(config, nullptr, s.handle());
    if (f != nullptr) {
      benchmark::DoNotOptimize(d->sluice_on_request_headers(f, s.handle(), true));
      if (d->sluice_on_response_headers != nullptr) {
        benchmark::DoNotOptimize(d->sluice_on_response_headers(f, s.handle(), true));
      }
      if (d->sluice_on_stream_destroy != nullptr) {
        d->sluice_on_stream_destroy(f);
      }
    }
  }
  if (d->sluice_on_config_destroy != nullptr) {
    d->sluice_on_config_destroy(config);
  }
}

void BM_Sdk_NoopStreamC(benchmark::State& state) {
  FakeHost host;
  FakeWorker w;
  FakeStream s;
  s.worker = &w;
  runStream(state, &kCFilter, host.table(), "{}", s);
}
BENCHMARK(BM_Sdk_NoopStreamC);

void BM_Sdk_NoopStreamCpp(benchmark::State& state) {
  FakeHost host;
  FakeWorker w;
  FakeStream s;
  s.worker = &w;
  runStream(state, sdk::filterType<NoopConfig>("sdk_noop"), host.table(), "{}", s);
}
BENCHMARK(BM_Sdk_NoopStreamCpp);

// ---- the example modules -------------------------------------------------------------------

std::string moduleDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) {
    return "extensions";
  }
  std::string exe(buf, static_cast<size_t>(n));
  std::string dir = exe.substr(0, exe.rfind('/')); // <build>/benchmarks
  return dir.substr(0, dir.rfind('/')) + "/extensions";
}

// The descriptor of lib<name>.so, loaded once for the program's life.
const sluice_filter_descriptor_t* loadModule(const char* name, const sluice_host_t* host) {
  std::string path = moduleDir() + "/lib" + name + ".so";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    return nullptr;
  }
  auto init = reinterpret_cast<sluice_module_init_fn>(dlsym(lib, SLUICE_MODULE_ENTRY_SYMBOL));
  const sluice_module_t* m =
      init == nullptr ? nullptr : init(host, SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
  return m == nullptr || m->filter_count == 0 ? nullptr : m->filters[0];
}

void benchModule(benchmark::State& state, const char* name, std::string_view config,
                 FakeStream& s) {
  FakeHost host;
  const sluice_filter_descriptor_t* d = loadModule(name, host.table());
  if (d == nullptr) {
    state.SkipWithError("module not built (build the sluice_ext_* targets)");
    return;
  }
  runStream(state, d, host.table(), config, s);
}

void BM_Extensions_HeaderRewrite(benchmark::State& state) {
  FakeWorker w;
  FakeStream s;
  s.worker = &w;
  s.request_headers.emplace_back("user-agent", "bench/1.0");
  s.response_headers.emplace_back("content-type", "text/plain");
  benchModule(state, "header_rewrite",
              R"({"request": {"set": {"x-client": "${client_ip}", "x-line": "${method} ${path}",
                                      "x-agent": "${request_header:user-agent}"},
                              "remove": ["x-secret"]},
                  "response": {"set": {"x-served": "${status} ${request_id}"}}})",
              s);
}
BENCHMARK(BM_Extensions_HeaderRewrite);

void BM_Extensions_IpAllowlistAllowed(benchmark::State& state) {
  FakeWorker w;
  FakeStream s;
  s.worker = &w;
  s.client_ip = "10.20.30.40";
  benchModule(state, "ip_allowlist",
              R"({"allow": ["192.168.0.0/16", "172.16.0.0/12", "2001:db8::/32", "10.0.0.0/8"]})",
              s);
}
BENCHMARK(BM_Extensions_IpAllowlistAllowed);

void BM_Extensions_IpAllowlistDenied(benchmark::State& state) {
  FakeWorker w;
  FakeStream s;
  s.worker = &w;
  s.client_ip = "2001:db9::1";
  benchModule(state, "ip_allowlist",
              R"({"allow": ["192.168.0.0/16", "172.16.0.0/12", "2001:db8::/32", "10.0.0.0/8"]})",
              s);
}
BENCHMARK(BM_Extensions_IpAllowlistDenied);

// 10,000 disjoint ranges (5,000 IPv4 /32s, 5,000 IPv6 /128s); the client is past the last
// one: was a scan of every range, now a binary search over the merged intervals.
void BM_Extensions_IpAllowlist10k(benchmark::State& state) {
  std::string allow;
  for (int i = 0; i < 5000; i++) {
    allow += "\"10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".7\",";
    allow += "\"2001:db8::" + std::to_string(i) + ":0\",";
  }
  allow.pop_back();
  FakeWorker w;
  FakeStream s;
  s.worker = &w;
  s.client_ip = "10.19.135.7"; // the 5,000th IPv4 entry: allowed
  benchModule(state, "ip_allowlist", "{\"allow\": [" + allow + "]}", s);
}
BENCHMARK(BM_Extensions_IpAllowlist10k);

} // namespace
