// A repeated token (a cache hit) and a request no rule protects allocate nothing in the filter:
// tokens are read as views, the cache compares in place, and stream objects are recycled. Global
// operator new is replaced in this test binary to count allocations on the current thread while
// a probe is active.

#include "test/filters/jwt_authn/harness.h"

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
