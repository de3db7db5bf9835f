// Steady state allocates nothing per request: the line is formatted into the worker's reused
// buffer and every value is read through the ABI as a view. Global operator new is replaced in
// this test binary to count allocations on the current thread while a probe is active.

#include "test/filters/access_log/harness.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>
#include <string>

namespace {

thread_local bool t_counting = false;
thread_local uint64_t t_allocations = 0;

void* countedAlloc(std::size_t n) {
  if (t_counting) {
    t_allocations++;
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}

class AllocationProbe {
public:
  AllocationProbe() {
    t_allocations = 0;
    t_counting = true;
  }
  ~AllocationProbe() { t_counting = false; }
  uint64_t count() const { return t_allocations; }
};

void* countedAlignedAlloc(std::size_t n, std::align_val_t align) {
  if (t_counting) {
    t_allocations++;
  }
  const auto a = static_cast<std::size_t>(align);
  const std::size_t size = (n + a - 1) / a * a; // aligned_alloc wants a multiple of the alignment
  if (void* p = std::aligned_alloc(a, size == 0 ? a : size)) {
    return p;
  }
  throw std::bad_alloc();
}

} // namespace

#if defined(__GNUC__) && !defined(__clang__)
// GCC sees free() on memory from operator new once these are inlined into each other: that is the
// point of a malloc-backed replacement.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Every replaceable form, so nothing mixes this malloc/free pair with another allocator's (ASan
// reports alloc-dealloc mismatches otherwise).
void* operator new(std::size_t n) {
  return countedAlloc(n);
}
void* operator new[](std::size_t n) {
  return countedAlloc(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return countedAlloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return countedAlloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a) {
  return countedAlignedAlloc(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return countedAlignedAlloc(n, a);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return countedAlignedAlloc(n, a);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return countedAlignedAlloc(n, a);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}

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
