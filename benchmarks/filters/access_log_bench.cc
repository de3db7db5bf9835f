// BM_AccessLog_Format*: one access-log line formatted into a reused buffer (the work done on a
// worker per request; the write(2) happens later on the writer thread).

#include "filters/access_log/formatter.h"
#include "sluice/filter.h"

#include <map>
#include <string>

#include <benchmark/benchmark.h>

namespace sluice::filters::access_log {
namespace {

class BenchSource : public RecordSource {
public:
  bool header(HeaderMapKind map, std::string_view name, std::string_view& value) const override {
    const auto& m = map == HeaderMapKind::Request ? request_ : response_;
    const auto it = m.find(name);
    if (it == m.end()) {
      return false;
    }
    value = it->second;
    return true;
  }
  bool metadata(std::string_view key, std::string_view& value) const override {
    const auto it = metadata_.find(key);
    if (it == metadata_.end()) {
      return false;
    }
    value = it->second;
    return true;
  }

private:
  std::map<std::string, std::string, std::less<>> request_{
      {":method", "GET"},
      {":path", "/api/v1/users/12345?fields=name"},
      {":authority", "api.example.com"},
      {"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0"}};
  std::map<std::string, std::string, std::less<>> response_{{"content-type", "application/json"}};
  std::map<std::string, std::string, std::less<>> metadata_{{"ai.agent", "GPTBot"},
                                                            {"ai.provider", "OpenAI"}};
};

Record benchRecord(const RecordSource* source) {
  Record r;
  r.start_unix_us = 1764000000123456ull;
  r.duration_us = 2345;
  r.upstream_duration_us = 2100;
  r.bytes_in = 0;
  r.bytes_out = 1234;
  r.status = 200;
  r.flags = 0;
  r.request_id = "0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b";
  r.client_address = "10.1.2.3:51234";
  r.client_ip = "10.1.2.3";
  r.protocol = "HTTP/1.1";
  r.method = "GET";
  r.authority = "api.example.com";
  r.path = "/api/v1/users/12345?fields=name";
  r.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
  r.referer = "https://app.example.com/users";
  r.upstream_cluster = "api";
  r.upstream_endpoint = "10.0.0.7:8080";
  r.metadata = {{"ai.agent", "GPTBot"}, {"ai.provider", "OpenAI"}};
  r.source = source;
  return r;
}

void runFormat(benchmark::State& state, const Formatter& formatter) {
  const BenchSource source;
  const Record record = benchRecord(&source);
  std::string out;
  out.reserve(4096);
  for (auto _ : state) {
    out.clear();
    formatter.format(record, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(out.size()));
}

void BM_AccessLog_FormatJson(benchmark::State& state) {
  runFormat(state, Formatter::json());
}

void BM_AccessLog_FormatCombined(benchmark::State& state) {
  runFormat(state, Formatter::combined());
}

void BM_AccessLog_FormatTemplate(benchmark::State& state) {
  std::string error;
  auto segments = parseTemplate("%START_TIME% %REQ(:method)% %PATH% %PROTOCOL% %STATUS% "
                                "%DURATION% %BYTES_OUT% %REQ(user-agent)% %RESP(content-type)% "
                                "%FLAGS% %METADATA(ai.agent)% %UPSTREAM_ENDPOINT%",
                                error);
  if (!segments) {
    state.SkipWithError(error.c_str());
    return;
  }
  runFormat(state, Formatter::fromTemplate(std::move(*segments)));
}

BENCHMARK(BM_AccessLog_FormatJson);
BENCHMARK(BM_AccessLog_FormatCombined);
BENCHMARK(BM_AccessLog_FormatTemplate);

} // namespace
} // namespace sluice::filters::access_log
