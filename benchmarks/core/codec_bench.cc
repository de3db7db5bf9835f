// BM_Codec_*: HTTP/1.1 request parsing into header views (no copies, no allocation once warm).
#include "core/http/codec.h"

#include <benchmark/benchmark.h>

using namespace sluice;

namespace {

constexpr std::string_view kRequest =
    "GET /api/v1/users/12345?fields=name,email HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl\r\n"
    "Cookie: session=abcdef0123456789; theme=dark\r\n"
    "X-Request-Id: 0f8e2a3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b\r\n"
    "Connection: keep-alive\r\n\r\n";

void BM_Codec_ParseRequest(benchmark::State& state) {
  http::Arena arena;
  http::Parser parser(http::MessageType::Request, arena, 65536);
  network::Buffer in, head;
  for (auto _ : state) {
    in.append(kRequest);
    bool ready = false;
    http::parseStep(parser, in, head, &ready);
    parser.resume();
    http::parseStep(parser, in, head, &ready);
    parser.resume();
    benchmark::DoNotOptimize(parser.head().headers.size());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRequest.size()));
}
BENCHMARK(BM_Codec_ParseRequest);

void BM_Codec_HeaderLookup(benchmark::State& state) {
  http::Arena arena;
  http::Parser parser(http::MessageType::Request, arena, 65536);
  network::Buffer in, head;
  in.append(kRequest);
  bool ready = false;
  http::parseStep(parser, in, head, &ready);
  for (auto _ : state) {
    benchmark::DoNotOptimize(parser.head().headers.get("x-request-id"));
  }
}
BENCHMARK(BM_Codec_HeaderLookup);

} // namespace
