#include "filters/ratelimit/local_store.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace sluice::filters::ratelimit {

namespace {

constexpr uint64_t kP0 = 0xa0761d6478bd642full;
constexpr uint64_t kP1 = 0xe7037ed1a0b428dbull;
constexpr uint64_t kP2 = 0x8ebc6af09c88c6e3ull;

uint64_t mix(uint64_t a, uint64_t b) {
  __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// A multiply-mix hash over 8-byte words; seeded, so keys cannot be chosen to collide.
uint64_t hashBytes(std::string_view s, uint64_t seed) {
  uint64_t h = seed ^ mix(s.size() ^ kP0, kP1);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix(h ^ w, kP1 ^ seed);
  }
  uint64_t w = 0;
  std::memcpy(&w, s.data() + i, s.size() - i);
  h = mix(h ^ w ^ kP2, kP1 ^ seed);
  return mix(h, kP0);
}

size_t pow2AtLeast(size_t n) {
  size_t p = 16;
  while (p < n) {
    p <<= 1;
  }
  return p;
}

uint64_t ceilDiv(uint64_t a, uint64_t b) {
  return (a + b - 1) / b;
}

} // namespace

LocalStore::LocalStore(uint64_t max_keys) {
  std::random_device rd;
  seed_a_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  seed_b_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ kP2;
  shard_limit_ = std::max<size_t>(1, static_cast<size_t>(ceilDiv(max_keys, kShards)));
  for (Shard& s : shards_) {
    s.index.assign(pow2AtLeast(shard_limit_ * 2), kNone);
    s.entries.resize(shard_limit_);
    for (size_t i = 0; i < shard_limit_; i++) {
      s.entries[i].next = i + 1 < shard_limit_ ? static_cast<uint32_t>(i + 1) : kNone;
    }
    s.free = 0;
  }
}

KeyHash LocalStore::hash(std::string_view key) const {
  KeyHash h{hashBytes(key, seed_a_), hashBytes(key, seed_b_)};
  if (h.a == 0) {
    h.a = 1; // 0 marks an empty slot
  }
  return h;
}

void LocalStore::unlink(Shard& s, uint32_t e) {
  Entry& x = s.entries[e];
  if (x.prev != kNone) {
    s.entries[x.prev].next = x.next;
  } else {
    s.head = x.next;
  }
  if (x.next != kNone) {
    s.entries[x.next].prev = x.prev;
  } else {
    s.tail = x.prev;
  }
  x.prev = kNone;
  x.next = kNone;
}

void LocalStore::pushFront(Shard& s, uint32_t e) {
  Entry& x = s.entries[e];
  x.prev = kNone;
  x.next = s.head;
  if (s.head != kNone) {
    s.entries[s.head].prev = e;
  }
  s.head = e;
  if (s.tail == kNone) {
    s.tail = e;
  }
}

// Backward-shift deletion in the index: keeps every probe sequence unbroken without tombstones.
void LocalStore::erase(Shard& s, uint32_t e) {
  const size_t mask = s.index.size() - 1;
  size_t hole = s.entries[e].slot;
  size_t j = hole;
  while (true) {
    j = (j + 1) & mask;
    const uint32_t moved = s.index[j];
    if (moved == kNone) {
      break;
    }
    size_t home = s.entries[moved].a & mask;
    // Move it into the hole unless its home lies cyclically in (hole, j].
    bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!in_range) {
      s.index[hole] = moved;
      s.entries[moved].slot = static_cast<uint32_t>(hole);
      hole = j;
    }
  }
  s.index[hole] = kNone;
  unlink(s, e);
  s.entries[e] = Entry{};
  s.entries[e].next = s.free;
  s.free = e;
  s.count--;
}

LocalStore::Entry* LocalStore::insert(Shard& s, const KeyHash& key, uint64_t now_ms,
                                      bool& cap_hit) {
  if (s.free == kNone) {
    // At the cap: reuse a full bucket (the same as an absent one) among the least recently used
    // few, else forget the least recently used live one.
    uint32_t victim = s.tail;
    uint32_t e = s.tail;
    for (int i = 0; i < kEvictProbe && e != kNone; i++, e = s.entries[e].prev) {
      if (s.entries[e].full_ms <= now_ms) {
        victim = e;
        break;
      }
    }
    if (s.entries[victim].full_ms > now_ms) {
      s.cap_hits++;
      cap_hit = true;
    }
    erase(s, victim);
  }
  const uint32_t e = s.free;
  s.free = s.entries[e].next;
  const size_t mask = s.index.size() - 1;
  size_t i = key.a & mask;
  while (s.index[i] != kNone) {
    i = (i + 1) & mask;
  }
  s.index[i] = e;
  Entry& x = s.entries[e];
  x = Entry{};
  x.a = key.a;
  x.b = key.b;
  x.slot = static_cast<uint32_t>(i);
  pushFront(s, e);
  s.count++;
  return &x;
}

Decision LocalStore::consume(const KeyHash& key, const Limit& limit, uint64_t now_ms) {
  const uint64_t cap = static_cast<uint64_t>(limit.burst) * Limit::kUnitsPerToken;
  const uint64_t rate = limit.requests_per_minute; // units per millisecond
  Shard& s = shards_[(key.a >> 58) % kShards];
  Decision d;
  std::lock_guard<std::mutex> lock(s.mutex);
  const size_t mask = s.index.size() - 1;
  Entry* e = nullptr;
  for (size_t i = key.a & mask; s.index[i] != kNone; i = (i + 1) & mask) {
    Entry& x = s.entries[s.index[i]];
    if (x.a == key.a && x.b == key.b) {
      e = &x;
      if (s.head != s.index[i]) {
        unlink(s, s.index[i]);
        pushFront(s, s.index[i]);
      }
      break;
    }
  }
  uint64_t units = cap;
  if (e != nullptr) {
    // Workers' loop clocks differ by a little: never refill backwards.
    const uint64_t now = std::max(now_ms, e->last_ms);
    const uint64_t elapsed = now - e->last_ms;
    units = e->units;
    if (elapsed >= ceilDiv(cap, rate)) {
      units = cap;
    } else {
      units = std::min(cap, units + elapsed * rate);
    }
    now_ms = now;
  }
  if (units >= Limit::kUnitsPerToken) {
    units -= Limit::kUnitsPerToken;
    d.allowed = true;
    if (e == nullptr) {
      e = insert(s, key, now_ms, d.cap_hit);
    }
    e->units = units;
    e->last_ms = now_ms;
    e->full_ms = now_ms + ceilDiv(cap - units, rate);
  } else {
    d.allowed = false;
    d.retry_ms = ceilDiv(Limit::kUnitsPerToken - units, rate);
  }
  d.remaining = static_cast<uint32_t>(units / Limit::kUnitsPerToken);
  d.reset_ms = ceilDiv(cap - units, rate);
  return d;
}

uint64_t LocalStore::capHits() const {
  uint64_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(s.mutex));
    n += s.cap_hits;
  }
  return n;
}

size_t LocalStore::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(s.mutex));
    n += s.count;
  }
  return n;
}

} // namespace sluice::filters::ratelimit
