// Steady state allocates nothing per request: the line is formatted into the worker's reused
// buffer and every value is read through the ABI as a view. Global operator new is replaced in
// this test binary (counting_new.h) to count allocations on the current thread.

#include "test/filters/access_log/harness.h"
#include "test/filters/common/counting_new.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>

namespace sluice::testing {
namespace {

TEST_CASE("AccessLog: the allocation probe counts allocations", "[access_log]") {
  std::string* volatile escaped = nullptr;
  AllocationProbe probe;
  escaped = new std::string(1000, 'x');
  const uint64_t n = probe.count();
  delete escaped;
  CHECK(n >= 2); // the string object and its heap buffer
}

TEST_CASE("AccessLog: formatting a request allocates nothing once warm", "[access_log]") {
  const std::string format =
      GENERATE(as<std::string>{}, R"("json")", R"("combined")",
               R"({"template": "%START_TIME% %REQ(:method)% %PATH% %RESP(x-up)% %STATUS% %FLAGS% )"
               R"(%METADATA(ai.agent)% %DURATION%"})");
  AccessLogHarness h;
  TempDir dir;
  // A buffer big enough that the loop below never hands it over: only the hot path is measured.
  REQUIRE(h.load(R"({"path": ")" + dir.file("a.log") + R"(", "buffer_bytes": 4194304, "format": )" +
                 format + "}"));
  h.addWorker();
  FakeStream s;
  s.request_headers = {{":method", "GET"},
                       {":path", "/v1/items/42?q=x"},
                       {":authority", "api.example.com"},
                       {"user-agent", "Mozilla/5.0 \"x\""},
                       {"referer", "https://r.example/"}};
  s.response_headers = {{"x-up", "api-1"}};
  s.metadata = {{"ai.agent", "GPTBot"}, {"ai.provider", "OpenAI"}, {"ai.purpose", "training"}};
  s.upstream_cluster = "api";
  s.upstream_endpoint = "10.0.0.7:8080";
  s.response_flags = SLUICE_FLAG_UPSTREAM_RESET | SLUICE_FLAG_LOCAL_REPLY;
  s.worker = &h.worker(0);
  void* filter = h.desc->sluice_on_stream_new(h.config, h.workerState(0), s.handle());
  for (int i = 0; i < 100; i++) { // warm up
    h.desc->sluice_on_stream_complete(filter, s.handle());
  }
  uint64_t allocations = 0;
  {
    AllocationProbe probe;
    for (int i = 0; i < 2000; i++) {
      h.desc->sluice_on_stream_complete(filter, s.handle());
    }
    allocations = probe.count();
  }
  INFO("format " << format);
  CHECK(allocations == 0);
  h.desc->sluice_on_stream_destroy(filter);
  h.destroyConfig();
  CHECK(readLines(dir.file("a.log")).size() == 2100);
}

} // namespace
} // namespace sluice::testing
