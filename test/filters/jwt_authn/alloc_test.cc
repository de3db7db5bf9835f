// A repeated token (a cache hit) and a request no rule protects allocate nothing in the filter:
// tokens are read as views, the cache compares in place, and stream objects are recycled. Global
// operator new is replaced in this test binary (counting_new.h) to count allocations on the
// current thread.

#include "test/filters/common/counting_new.h"
#include "test/filters/jwt_authn/harness.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>

namespace sluice::testing::jwt {
namespace {

TEST_CASE("jwt_authn: the allocation probe counts allocations", "[filter][jwt_authn]") {
  std::string* volatile escaped = nullptr;
  AllocationProbe probe;
  escaped = new std::string(1000, 'x');
  const uint64_t n = probe.count();
  delete escaped;
  CHECK(n >= 2);
}

TEST_CASE("jwt_authn: a cache hit allocates nothing once warm", "[filter][jwt_authn]") {
  Harness h;
  REQUIRE(h.load(config()));
  const std::string path = GENERATE(as<std::string>{}, "/api/x", "/public/x", "/other");
  const std::string token = mint("RS256");
  FakeStream s;
  s.worker = &h.worker();
  s.setHeader(SLUICE_HEADERS_REQUEST, ":path", path);
  s.setHeader(SLUICE_HEADERS_REQUEST, "authorization", "Bearer " + token);
  h.request("/api", {{"authorization", "Bearer " + token}}); // warm: verified and cached
  void* ws = const_cast<filters::jwt_authn::WorkerState*>(h.state());
  uint64_t allocations = 0;
  sluice_status_t status = SLUICE_STATUS_STOP;
  {
    AllocationProbe probe;
    for (int i = 0; i < 100; i++) {
      void* f = h.desc->sluice_on_stream_new(h.config, ws, s.handle());
      status = h.desc->sluice_on_request_headers(f, s.handle(), true);
      h.desc->sluice_on_stream_complete(f, s.handle());
      h.desc->sluice_on_stream_destroy(f);
    }
    allocations = probe.count();
  }
  CHECK(status == SLUICE_STATUS_CONTINUE);
  CHECK(s.local_replies.empty());
  CHECK(allocations == 0);
}

} // namespace
} // namespace sluice::testing::jwt
