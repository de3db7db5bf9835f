// The local backend's sharded bucket store: exact refill arithmetic, the key cap and eviction of
// full buckets, and sharing between threads.

#include "filters/ratelimit/local_store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace sluice::filters::ratelimit {
namespace {

TEST_CASE("LocalStore: decisions, remaining, reset and retry", "[ratelimit]") {
  LocalStore store(1000);
  const Limit limit{2, 30}; // burst 2, one token every 2 s
  const KeyHash k = store.hash("k");
  Decision d = store.consume(k, limit, 0);
  CHECK((d.allowed && d.remaining == 1 && d.reset_ms == 2000));
  d = store.consume(k, limit, 0);
  CHECK((d.allowed && d.remaining == 0 && d.reset_ms == 4000));
  d = store.consume(k, limit, 500);
  CHECK((!d.allowed && d.remaining == 0 && d.retry_ms == 1500 && d.reset_ms == 3500));
  d = store.consume(k, limit, 2000);
  CHECK((d.allowed && d.remaining == 0));
  // A clock that runs behind (another worker's loop time) never refills backwards.
  d = store.consume(k, limit, 1000);
  CHECK(!d.allowed);
  CHECK(store.size() == 1);
}

TEST_CASE("LocalStore: the key cap evicts full buckets first, then live ones (counted)",
          "[ratelimit]") {
  LocalStore store(6400); // 100 buckets per shard
  const Limit limit{5, 60};
  for (int i = 0; i < 20000; i++) {
    store.consume(store.hash("key-" + std::to_string(i)), limit, 0);
  }
  CHECK(store.size() <= store.capacity());
  const uint64_t hits = store.capHits();
  CHECK(hits >= 20000 - 6400);
  // Five seconds later every bucket is full again (the same as absent): room for new keys is
  // made by dropping those, and nothing live is forgotten.
  for (int i = 0; i < 1000; i++) {
    store.consume(store.hash("late-" + std::to_string(i)), limit, 5000);
  }
  CHECK(store.capHits() == hits);
  CHECK(store.size() <= store.capacity());
  // The late buckets are all remembered: each has one token fewer.
  for (int i = 0; i < 1000; i++) {
    Decision d = store.consume(store.hash("late-" + std::to_string(i)), limit, 5000);
    REQUIRE((d.allowed && d.remaining == 3));
  }
  CHECK(store.capHits() == hits);
}

TEST_CASE("LocalStore: at the cap the least recently used live bucket is the one forgotten",
          "[ratelimit]") {
  LocalStore store(64 * 4); // 4 buckets per shard
  const Limit limit{2, 1};  // refills in two minutes: every bucket stays live
  // Keys of one shard (the shard is the top 6 bits of the first hash word).
  std::vector<KeyHash> keys;
  uint64_t shard = UINT64_MAX;
  for (int i = 0; keys.size() < 6; i++) {
    KeyHash k = store.hash("k" + std::to_string(i));
    if (shard == UINT64_MAX) {
      shard = k.a >> 58;
    }
    if ((k.a >> 58) == shard) {
      keys.push_back(k);
    }
  }
  for (int i = 0; i < 4; i++) {
    CHECK(store.consume(keys[i], limit, 0).remaining == 1);
  }
  CHECK(store.consume(keys[0], limit, 1).remaining == 0); // keys[0] is now the most recent
  Decision d = store.consume(keys[4], limit, 2);          // forgets keys[1], the oldest
  CHECK(d.cap_hit);
  CHECK(store.capHits() == 1);
  CHECK(store.consume(keys[2], limit, 3).remaining == 0); // remembered
  CHECK(store.consume(keys[3], limit, 3).remaining == 0); // remembered
  CHECK_FALSE(store.consume(keys[0], limit, 3).allowed);  // remembered, empty
  // keys[1] was forgotten: it starts again with a full bucket (and forgets keys[4]).
  d = store.consume(keys[1], limit, 4);
  CHECK((d.allowed && d.remaining == 1 && d.cap_hit));
  CHECK(store.size() == 4);
}

TEST_CASE("LocalStore: a flood of new keys keeps the store at its cap and earlier keys working",
          "[ratelimit]") {
  LocalStore store(10000);
  const Limit limit{3, 60};
  const KeyHash hot = store.hash("hot");
  for (int i = 0; i < 200000; i++) {
    store.consume(store.hash("flood-" + std::to_string(i)), limit, static_cast<uint64_t>(i));
    if (i % 100 == 0) {
      store.consume(hot, limit, static_cast<uint64_t>(i)); // kept recent: never forgotten
    }
  }
  CHECK(store.size() == store.capacity());
  // Each flood bucket is full again a second after its use, long before it is the least
  // recently used: room was always made from full buckets, nothing live was forgotten.
  CHECK(store.capHits() == 0);
  // Asked for 10 tokens a second at 1 token/s with burst 3: remembered, so nearly empty (a
  // forgotten key would start again at burst - 1 = 2).
  CHECK(store.consume(hot, limit, 200000).remaining == 0);
}

TEST_CASE("LocalStore: a bucket survives while the store is under its cap", "[ratelimit]") {
  LocalStore store(100000);
  const Limit limit{1, 1};
  const KeyHash k = store.hash("victim");
  CHECK(store.consume(k, limit, 0).allowed);
  for (int i = 0; i < 20000; i++) {
    store.consume(store.hash("other-" + std::to_string(i)), limit, 0);
  }
  CHECK(store.capHits() == 0);
  CHECK_FALSE(store.consume(k, limit, 1).allowed);
}

TEST_CASE("LocalStore: threads share one bucket without losing updates", "[ratelimit]") {
  LocalStore store(1000);
  const Limit limit{1000, 1};
  const KeyHash k = store.hash("shared");
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; i++) {
        allowed += store.consume(k, limit, 0).allowed ? 1 : 0;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(allowed == 1000);
}

} // namespace
} // namespace sluice::filters::ratelimit
