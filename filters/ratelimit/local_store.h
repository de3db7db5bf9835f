#pragma once

// The local backend: token buckets shared by every worker of the process, without a global
// lock. Keys are hashed (128 bits, seeded per store) into one of kShards shards; each shard holds
// a fixed array of buckets, an open-addressing index over them and a least-recently-used list,
// behind its own small mutex held only for one bucket update (no allocation, no I/O, no scan
// under it: every operation is O(1), also under a flood of new keys). Memory is bounded: when a
// shard is at its share of max_keys, a new key takes the place of the least recently used
// bucket. A bucket that has refilled to full is equivalent to an absent one, so the few least
// recently used are checked for one first (kEvictProbe); only when none of them is full is a live
// bucket forgotten (its key starts again with a full bucket) and the cap-hit counter goes up.

#include "filters/ratelimit/config.h"

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace sluice::filters::ratelimit {

struct Decision {
  bool allowed = true;
  uint32_t remaining = 0; // whole tokens left after this request
  uint64_t reset_ms = 0;  // until the bucket is full again
  uint64_t retry_ms = 0;  // until the next token (denied requests only)
  bool cap_hit = false;   // making room for this key forgot another live bucket
};

struct KeyHash {
  uint64_t a = 0;
  uint64_t b = 0;
};

class LocalStore {
public:
  static constexpr size_t kShards = 64;

  explicit LocalStore(uint64_t max_keys);
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  KeyHash hash(std::string_view key) const;
  // Takes one token from the bucket of `key` at time now_ms (any monotonic millisecond clock
  // shared by the callers). Thread-safe.
  Decision consume(const KeyHash& key, const Limit& limit, uint64_t now_ms);

  // How many times the key cap forced a live bucket out.
  uint64_t capHits() const;
  size_t size() const; // buckets held (for tests)
  size_t capacity() const { return shard_limit_ * kShards; }

private:
  static constexpr uint32_t kNone = UINT32_MAX;
  // How many buckets from the least recently used end are checked for a full one to reuse.
  static constexpr int kEvictProbe = 8;

  struct Entry {
    uint64_t a = 0; // 0: free
    uint64_t b = 0;
    uint64_t units = 0;    // tokens × Limit::kUnitsPerToken
    uint64_t last_ms = 0;  // when `units` was computed
    uint64_t full_ms = 0;  // when the bucket is full again (then it equals an absent one)
    uint32_t prev = kNone; // towards the most recently used; the free list uses `next`
    uint32_t next = kNone; // towards the least recently used
    uint32_t slot = 0;     // where the index points at this entry
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::vector<Entry> entries;  // shard_limit_ buckets; indices stay stable
    std::vector<uint32_t> index; // power-of-two size, at most half full; kNone: empty
    uint32_t head = kNone;       // most recently used
    uint32_t tail = kNone;       // least recently used
    uint32_t free = kNone;
    size_t count = 0;
    uint64_t cap_hits = 0;
  };

  static void unlink(Shard& s, uint32_t e);
  static void pushFront(Shard& s, uint32_t e);
  // Removes entry e from the index (backward-shift deletion) and the list, and frees it.
  static void erase(Shard& s, uint32_t e);
  Entry* insert(Shard& s, const KeyHash& key, uint64_t now_ms, bool& cap_hit);

  uint64_t seed_a_;
  uint64_t seed_b_;
  size_t shard_limit_;
  std::array<Shard, kShards> shards_;
};

} // namespace sluice::filters::ratelimit
