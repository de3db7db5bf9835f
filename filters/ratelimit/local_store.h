#pragma once

// The local backend: token buckets shared by every worker of the process, without a global
// lock. Keys are hashed (128 bits, seeded per store) into one of kShards shards; each shard is
// a fixed-size open-addressing table behind its own small mutex, held only for one bucket
// update (no allocation, no I/O under it). Memory is bounded: a bucket that has refilled to
// full is equivalent to an absent one and is dropped when room is needed; when a shard is at
// its share of max_keys with no full bucket to drop, the least recently used bucket is
// forgotten (its key starts again with a full bucket) and the cap-hit counter goes up.

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
  struct Entry {
    uint64_t a = 0; // 0: empty slot
    uint64_t b = 0;
    uint64_t units = 0;   // tokens × Limit::kUnitsPerToken
    uint64_t last_ms = 0; // when `units` was computed
    uint64_t full_ms = 0; // when the bucket is full again (then it equals an absent one)
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::vector<Entry> slots; // power-of-two size, at most half full
    size_t count = 0;
    uint64_t cap_hits = 0;
  };

  static void erase(Shard& s, size_t i);
  Entry* insert(Shard& s, const KeyHash& key, uint64_t now_ms, bool& cap_hit);

  uint64_t seed_a_;
  uint64_t seed_b_;
  size_t shard_limit_;
  std::array<Shard, kShards> shards_;
};

} // namespace sluice::filters::ratelimit
