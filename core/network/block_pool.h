#pragma once

// Per-thread free lists of the two block sizes every connection uses (4 KiB: write buffers,
// header arenas; 16 KiB: read buffers). A connection takes blocks when bytes arrive and gives
// them back when it goes idle, so an idle keep-alive connection holds no buffer memory while a
// busy worker reuses the same blocks request after request without calling malloc. Each list
// keeps at most kMaxCachedBytes; blocks beyond that go back to malloc. Blocks are plain malloc
// memory: any thread may give back a block another thread took (it joins that thread's list).

#include <cstddef>

namespace sluice::network {

class BlockPool {
public:
  static constexpr size_t kSmall = 4096;
  static constexpr size_t kLarge = 16384;
  static constexpr size_t kMaxCachedBytes = 4 * 1024 * 1024; // per size, per thread

  // True for the sizes the pool keeps.
  static bool pooled(size_t size) { return size == kSmall || size == kLarge; }
  // A block of exactly `size` bytes (malloc'd when the list is empty). Aborts on OOM.
  static char* take(size_t size);
  // Returns a block taken with take(size) (or malloc'd with that size); nullptr is ignored.
  static void give(char* block, size_t size);
  // Blocks cached on this thread (tests, /debug).
  static size_t cached(size_t size);

  // For other per-worker object caches: under ASan, marks an object's bytes unaddressable while
  // it is cached (and addressable again when it is handed out), so a use after give-back is
  // reported as a use after free would be. No-ops without ASan.
  static void poisonCached(const void* p, size_t n);
  static void unpoisonCached(const void* p, size_t n);
};

} // namespace sluice::network
