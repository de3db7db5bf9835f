// Recording from many threads, scrapes running meanwhile, threads exiting, definitions made
// while workers record. Run under -DSLUICE_SANITIZE=thread as well as address,undefined.
#include "core/stats/registry.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <future>
#include <string>
#include <thread>
#include <vector>

using namespace sluice::stats;

TEST_CASE("Stats: 4 threads x 100000 increments give the exact total during scrapes", "[stats]") {
  Registry r;
  const uint32_t counter = r.defineCounter("sluice_test_total", "h", {{"k", "v"}});
  const uint32_t histogram = r.defineHistogram("sluice_test_seconds", "h", {}, {0.5});
  const uint32_t gauge = r.defineGauge("sluice_test_active", "h", {});
  constexpr int kThreads = 4;
  constexpr int kIncrements = 100000;

  std::atomic<bool> done{false};
  std::atomic<bool> went_backwards{false};
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    double last = 0;
    while (!done.load()) {
      std::string text = r.renderPrometheus();
      std::string json = r.renderJson();
      double now = r.value(counter);
      HistogramValue h = r.histogramValue(histogram);
      if (now < last || text.empty() || json.empty() || h.count != h.buckets.back()) {
        went_backwards.store(true);
      }
      last = now;
      scrapes.fetch_add(1);
    }
  });

  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; t++) {
    workers.emplace_back([&] {
      for (int i = 0; i < kIncrements; i++) {
        r.add(counter, 1);
        r.observe(histogram, i % 2 == 0 ? 0.25 : 1.0);
        r.add(gauge, 1);
        r.add(gauge, -1);
      }
    });
  }
  for (auto& w : workers) {
    w.join();
  }
  while (scrapes.load() < 2) {
    std::this_thread::yield();
  }
  done.store(true);
  scraper.join();

  CHECK_FALSE(went_backwards.load());
  CHECK(r.value(counter) == kThreads * kIncrements);
  HistogramValue h = r.histogramValue(histogram);
  CHECK(h.count == kThreads * kIncrements);
  CHECK(h.buckets == std::vector<uint64_t>{kThreads * kIncrements / 2, kThreads * kIncrements});
  CHECK(h.sum == kThreads * (kIncrements / 2) * 1.25);
  CHECK(r.value(gauge) == 0);
}

TEST_CASE("Stats: a thread that exits keeps its counts", "[stats]") {
  Registry r;
  const uint32_t counter = r.defineCounter("sluice_test_total", "h", {});
  const uint32_t histogram = r.defineHistogram("sluice_test_seconds", "h", {}, {1});
  std::thread([&] {
    r.add(counter, 5);
    r.observe(histogram, 0.5);
  }).join();
  CHECK(r.value(counter) == 5);
  CHECK(r.histogramValue(histogram).count == 1);
  r.add(counter, 1);
  std::thread([&] { r.add(counter, 10); }).join();
  CHECK(r.value(counter) == 16);
  SECTION("and series defined after the exit still work") {
    const uint32_t later = r.defineCounter("sluice_later_total", "h", {});
    std::thread([&] { r.add(later, 3); }).join();
    CHECK(r.value(later) == 3);
    CHECK(r.value(counter) == 16);
  }
  CHECK(r.renderPrometheus().find("sluice_test_total 16\n") != std::string::npos);
}

namespace {

// Records when destroyed, which happens after the registry's own thread-local state is gone
// when it was constructed before the thread's first record.
struct RecordOnExit {
  Registry* registry = nullptr;
  uint32_t counter = kInvalidId;
  uint32_t histogram = kInvalidId;
  ~RecordOnExit() {
    if (registry != nullptr) {
      registry->add(counter, 1);
      registry->observe(histogram, 2);
    }
  }
};

} // namespace

TEST_CASE("Stats: a record made while its thread exits is kept", "[stats]") {
  Registry r;
  const uint32_t counter = r.defineCounter("sluice_test_total", "h", {});
  const uint32_t histogram = r.defineHistogram("sluice_test_seconds", "h", {}, {1});
  std::thread([&] {
    thread_local RecordOnExit on_exit;
    on_exit.registry = &r;
    on_exit.counter = counter;
    on_exit.histogram = histogram;
    r.add(counter, 1);
  }).join();
  CHECK(r.value(counter) == 2);
  HistogramValue h = r.histogramValue(histogram);
  CHECK(h.buckets == std::vector<uint64_t>{0, 1});
  CHECK(h.sum == 2);
}

TEST_CASE("Stats: definitions made while workers record and scrapes run", "[stats]") {
  Registry r;
  const uint32_t counter = r.defineCounter("sluice_test_total", "h", {});
  std::atomic<bool> done{false};
  std::atomic<uint32_t> newest{kInvalidId};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50000; i++) {
        r.add(counter, 1);
        uint32_t id = newest.load(std::memory_order_acquire);
        if (id != kInvalidId) {
          r.observe(id, 0.01);
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!done.load()) {
      (void)r.renderPrometheus();
    }
  });
  // Crosses many cell blocks: every shard grows while its thread records.
  std::vector<uint32_t> ids;
  for (int i = 0; i < 2000; i++) {
    uint32_t id = r.defineHistogram("sluice_test_seconds", "h", {{"n", std::to_string(i)}}, {});
    REQUIRE(id != kInvalidId);
    ids.push_back(id);
    newest.store(id, std::memory_order_release);
  }
  for (int t = 0; t < 3; t++) {
    threads[t].join();
  }
  done.store(true);
  threads.back().join();
  CHECK(r.value(counter) == 150000);
  uint64_t observed = 0;
  for (uint32_t id : ids) {
    observed += r.histogramValue(id).count;
  }
  CHECK(observed <= 150000);
  r.observe(ids.back(), 0.01);
  CHECK(r.histogramValue(ids.back()).count >= 1);
}

TEST_CASE("Stats: a thread outliving its registry exits cleanly", "[stats]") {
  std::promise<void> recorded;
  std::promise<void> registry_gone;
  std::thread worker;
  {
    Registry r;
    const uint32_t counter = r.defineCounter("sluice_test_total", "h", {});
    worker = std::thread([&r, counter, &recorded, gone = registry_gone.get_future()]() mutable {
      r.add(counter, 1);
      recorded.set_value();
      gone.wait();
      // A new registry gets a new shard, never the dead registry's.
      Registry again;
      const uint32_t c = again.defineCounter("sluice_again_total", "h", {});
      again.add(c, 2);
      recorded.set_value();
    });
    recorded.get_future().wait();
    CHECK(r.value(counter) == 1);
  }
  recorded = std::promise<void>();
  std::future<void> second = recorded.get_future();
  registry_gone.set_value();
  second.wait();
  worker.join();
}
