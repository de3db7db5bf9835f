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
  CHECK(store.size() <= 1000 + 64);
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
