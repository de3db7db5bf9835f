#include "core/common/alloc_count.h"
#include "core/server/cli.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

// Allocation counting for `sluice bench-filter`: malloc, calloc and realloc of the whole process
// (C++ new, the C ABI's modules, libraries) are interposed here and forwarded to glibc. Counting
// is off unless bench-filter turns it on, so a server pays one relaxed load per allocation.
// ASan and TSan builds keep their own allocator and report counting as unavailable.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && defined(__GLIBC__)
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocations{0};
std::atomic<uint64_t> g_worker_allocations{0};
// Static TLS of the executable: reading it never allocates.
thread_local bool t_worker = false;

inline void countOne() {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (t_worker) {
      g_worker_allocations.fetch_add(1, std::memory_order_relaxed);
    }
  }
}
uint64_t allocations() {
  return g_allocations.load(std::memory_order_relaxed);
}
uint64_t workerAllocations() {
  return g_worker_allocations.load(std::memory_order_relaxed);
}
void markWorker() {
  t_worker = true;
}
void enable(bool on) {
  g_counting.store(on, std::memory_order_relaxed);
}
} // namespace

extern "C" {
void* malloc(size_t n) {
  countOne();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) {
  countOne();
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
  countOne();
  return __libc_realloc(p, n);
}
void free(void* p) {
  __libc_free(p);
}
}
#define SLUICE_HAVE_ALLOC_COUNTER 1
#endif

int main(int argc, char** argv) {
#ifdef SLUICE_HAVE_ALLOC_COUNTER
  sluice::setAllocCounter(&allocations, &enable, &markWorker, &workerAllocations);
  // Debug aid for allocation tests (GET /debug/allocations on the admin API).
  const char* count = std::getenv("SLUICE_COUNT_ALLOCATIONS");
  if (count != nullptr && count[0] == '1' && count[1] == '\0') {
    sluice::enableAllocCount(true);
  }
#endif
  return sluice::server::runCli(argc, argv);
}
