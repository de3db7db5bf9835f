#include "core/network/block_pool.h"

#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_POOL_ASAN 1
#endif
#endif
#ifdef SLUICE_POOL_ASAN
#include <sanitizer/asan_interface.h>
// A cached block is poisoned past its next pointer, so a use after give() is reported by ASan
// as it would be after free().
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace sluice::network {

namespace {

// An intrusive LIFO: a free block's first bytes hold the next pointer, so the list needs no
// memory of its own. The most recently returned block is handed out first (warm in cache).
struct FreeList {
  struct Node {
    Node* next;
  };
  Node* head = nullptr;
  size_t count = 0;

  ~FreeList() {
    while (head != nullptr) {
      Node* n = head;
      POOL_UNPOISON(n, sizeof(Node));
      head = n->next;
      std::free(n);
    }
  }
};

struct ThreadPools {
  FreeList small;
  FreeList large;
  FreeList& of(size_t size) { return size == BlockPool::kSmall ? small : large; }
};

// initial-exec: sluice's core is linked into the executable, never dlopen'ed, so the pools
// are reached without a __tls_get_addr call on every take and give.
thread_local ThreadPools t_pools __attribute__((tls_model("initial-exec")));

} // namespace

char* BlockPool::take(size_t size) {
  if (pooled(size)) {
    FreeList& l = t_pools.of(size);
    if (l.head != nullptr) {
      FreeList::Node* n = l.head;
      l.head = n->next;
      l.count--;
      POOL_UNPOISON(n, size);
      return reinterpret_cast<char*>(n);
    }
  }
  char* p = static_cast<char*>(std::malloc(size));
  if (p == nullptr) {
    std::abort();
  }
  return p;
}

void BlockPool::give(char* block, size_t size) {
  if (block == nullptr) {
    return;
  }
  if (pooled(size)) {
    FreeList& l = t_pools.of(size);
    if ((l.count + 1) * size <= kMaxCachedBytes) {
      auto* n = reinterpret_cast<FreeList::Node*>(block);
      n->next = l.head;
      l.head = n;
      l.count++;
      POOL_POISON(block + sizeof(FreeList::Node), size - sizeof(FreeList::Node));
      return;
    }
  }
  std::free(block);
}

size_t BlockPool::cached(size_t size) {
  return pooled(size) ? t_pools.of(size).count : 0;
}

void BlockPool::poisonCached(const void* p, size_t n) {
  POOL_POISON(p, n);
}

void BlockPool::unpoisonCached(const void* p, size_t n) {
  POOL_UNPOISON(p, n);
}

} // namespace sluice::network
