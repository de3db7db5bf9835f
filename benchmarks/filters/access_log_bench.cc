// BM_AccessLog_Format*: one access-log line into a reused buffer.
#include "filters/access_log/formatter.h"

#include <benchmark/benchmark.h>

using namespace sluice::filters::access_log;

namespace {

Record record() {
  Record r;
  r.start_unix_us = 1764000000123456ull;
  r.request_id = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
  r.client = "10.1.2.3:51234";
  r.client_ip = "10.1.2.3";
  r.method = "GET";
  r.authority = "api.example.com";
  r.path = "/api/v1/users/12345?fields=name";
  r.protocol = "HTTP/1.1";
  r.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
  r.upstream_cluster = "api";
  r.upstream_endpoint = "10.0.0.7:8080";
  r.status = 200;
  r.bytes_out = 1234;
  r.duration_us = 2345;
  r.upstream_us = 2100;
  r.metadata = {{"ai.agent", "GPTBot"}, {"ai.provider", "OpenAI"}};
  return r;
}

void bench(benchmark::State& state, const Formatter& f) {
  Record r = record();
  std::string out;
  out.reserve(4096);
  for (auto _ : state) {
    out.clear();
    f.format(r, out);
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_AccessLog_FormatJson(benchmark::State& s) {
  bench(s, Formatter(Format::Json));
}
void BM_AccessLog_FormatCombined(benchmark::State& s) {
  bench(s, Formatter(Format::Combined));
}
void BM_AccessLog_FormatTemplate(benchmark::State& s) {
  std::vector<Segment> segs;
  std::string err;
  parseTemplate("%START_TIME% %METHOD% %PATH% %STATUS% %DURATION% %FLAGS% %METADATA(ai.agent)%",
                segs, err);
  bench(s, Formatter(Format::Template, segs));
}
BENCHMARK(BM_AccessLog_FormatJson);
BENCHMARK(BM_AccessLog_FormatCombined);
BENCHMARK(BM_AccessLog_FormatTemplate);

} // namespace
