// core/event: posted work, timers and deferred deletion on a real libuv loop.

#include "core/event/dispatcher.h"
#include "core/event/ring.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace sluice::event {
namespace {

TEST_CASE("Dispatcher: posted work runs in order, from any thread, on the loop", "[event]") {
  Dispatcher d;
  std::vector<int> seen;
  std::thread::id loop_thread;
  d.post([&] { seen.push_back(1); });
  std::thread t([&] { d.post([&] { seen.push_back(2); }); });
  t.join();
  d.post([&] {
    seen.push_back(3);
    loop_thread = std::this_thread::get_id();
    // Posted from a callback: runs on a later iteration, after this one.
    d.post([&] {
      seen.push_back(5);
      d.stop();
    });
    seen.push_back(4);
  });
  d.run();
  CHECK(seen == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(loop_thread == std::this_thread::get_id());
}

TEST_CASE("Dispatcher: stop() from another thread ends run()", "[event]") {
  Dispatcher d;
  auto keep = d.createTimer([] {});
  keep->enable(60000); // the loop would otherwise wait a minute
  std::thread t([&] { d.stop(); });
  d.run();
  t.join();
  CHECK(keep->enabled());
}

TEST_CASE("Timer: callbacks in deadline order; disabled or destroyed timers never run", "[event]") {
  Dispatcher d;
  std::vector<std::string> order;
  auto late = d.createTimer([&] {
    order.push_back("late");
    d.stop();
  });
  auto early = d.createTimer([&] { order.push_back("early"); });
  auto middle = d.createTimer([&] { order.push_back("middle"); });
  auto off = d.createTimer([&] { order.push_back("off"); });
  auto gone = d.createTimer([&] { order.push_back("gone"); });
  late->enable(40);
  middle->enable(20);
  early->enable(5);
  off->enable(10);
  off->disable();
  gone->enable(10);
  gone.reset();
  d.run();
  CHECK(order == std::vector<std::string>{"early", "middle", "late"});
  CHECK_FALSE(early->enabled()); // one-shot
}

TEST_CASE("Timer: re-armed to a later deadline, it runs once, at the last one", "[event]") {
  Dispatcher d;
  int runs = 0;
  uint64_t fired_at = 0;
  auto t = d.createTimer([&] {
    runs++;
    fired_at = d.nowMs();
  });
  auto end = d.createTimer([&] { d.stop(); });
  uint64_t start = d.nowMs();
  t->enable(5);
  t->enable(50); // later: the libuv timer fires at 5 ms and is started again for the rest
  end->enable(120);
  d.run();
  CHECK(runs == 1);
  CHECK(fired_at - start >= 50);
}

struct Probe : DeferredDeletable {
  explicit Probe(bool& gone) : gone_(gone) {}
  ~Probe() override { gone_ = true; }
  bool& gone_;
};

TEST_CASE("Dispatcher: deferred deletion waits for the current callback to unwind", "[event]") {
  Dispatcher d;
  bool gone = false;
  bool gone_during_callback = true;
  bool gone_next_iteration = false;
  d.post([&] {
    d.deferredDelete(std::make_unique<Probe>(gone));
    gone_during_callback = gone;
    d.post([&] {
      gone_next_iteration = gone;
      d.stop();
    });
  });
  d.run();
  CHECK_FALSE(gone_during_callback);
  CHECK(gone_next_iteration);
  CHECK(gone);
}

struct Caller : DeferredCall {
  explicit Caller(std::vector<int>& log, int id) : log_(log), id_(id) {}
  void onDeferredCall() override { log_.push_back(id_); }
  std::vector<int>& log_;
  int id_;
};

TEST_CASE("Dispatcher: a deferred call runs once, after the current callback unwinds, in order; "
          "a destroyed caller is not called",
          "[event]") {
  Dispatcher d;
  std::vector<int> log;
  std::vector<int> seen_in_callback;
  std::vector<int> seen_next_iteration;
  Caller one(log, 1);
  Caller two(log, 2);
  auto gone = std::make_unique<Caller>(log, 3);
  d.post([&] {
    d.deferCall(two);
    d.deferCall(one);
    d.deferCall(two); // queued already: still once, in its first place
    d.deferCall(*gone);
    gone.reset(); // takes itself off the list
    seen_in_callback = log;
    d.post([&] {
      seen_next_iteration = log;
      d.deferCall(one); // can be queued again once it ran
      d.stop();
    });
  });
  d.run();
  CHECK(seen_in_callback.empty());
  CHECK(seen_next_iteration == std::vector<int>{2, 1});
  CHECK(log == std::vector<int>{2, 1, 1});
}

TEST_CASE("Dispatcher: a turn waits for the replies due and the requests its answers prompt",
          "[event]") {
  // A target below 2 is a plain wait for the first completion (no min-wait).
  SECTION("a lone client: its request and its reply are each handled the moment they come") {
    CHECK(Dispatcher::waitTarget(0, 0) == 1); // idle: the next request
    CHECK(Dispatcher::waitTarget(1, 0) == 1); // its request forwarded: the reply
    CHECK(Dispatcher::waitTarget(0, 1) == 1); // its answer sent: its next request
  }
  SECTION("a burst: the replies due, and two of the requests the answers prompt") {
    CHECK(Dispatcher::waitTarget(3, 0) == 3);
    CHECK(Dispatcher::waitTarget(0, 5) == 2);
    CHECK(Dispatcher::waitTarget(10, 1) == 11);
    CHECK(Dispatcher::waitTarget(10, 40) == 12);
  }
  SECTION("at most 64, never below 1") {
    CHECK(Dispatcher::waitTarget(500, 500) == 64);
    CHECK(Dispatcher::waitTarget(63, 2) == 64);
    CHECK(Dispatcher::waitTarget(-3, 0) == 1); // a miscount must not make the turn spin
  }
}

TEST_CASE("Ring: a min-wait is used only where a short kernel timer is cheap", "[event]") {
  SECTION("the budget: a timer costing less than a wake-up saves") {
    CHECK(Ring::minWaitPays(0));
    CHECK(Ring::minWaitPays(300)); // bare metal, most VMs
    CHECK(Ring::minWaitPays(Ring::kMinWaitTimerBudgetNs - 1));
    CHECK_FALSE(Ring::minWaitPays(Ring::kMinWaitTimerBudgetNs));
    CHECK_FALSE(Ring::minWaitPays(13000)); // a nested KVM guest: each reprogramming traps
  }
  SECTION("the cost is measured once and kept") {
    const int64_t cost = Ring::shortTimerCostNs();
    CHECK(cost >= 0);
    CHECK(cost < 1000000); // a timer costs microseconds, not a millisecond, anywhere
    CHECK(Ring::shortTimerCostNs() == cost);
  }
  SECTION("a ring takes the min-wait when its kernel has one and the timer pays") {
    std::string why;
    auto ring = Ring::open(why);
    if (ring == nullptr) {
      WARN("no io_uring here (" << why << "): nothing to check");
      return;
    }
    CHECK(ring->minWait() ==
          (ring->kernelMinWait() && Ring::minWaitPays(Ring::shortTimerCostNs())));
  }
}

} // namespace
} // namespace sluice::event
