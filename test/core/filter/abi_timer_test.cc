// ABI timers and posted tasks on a real worker loop: pooled slots, ids that stay harmless after
// their slot is reused, and per-stream lists that end with the stream.
#include "core/event/dispatcher.h"
#include "core/filter/stream.h"
#include "core/filter/worker_context.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace sluice;

namespace {

class NullOwner : public filter::StreamOwner {
public:
  network::Buffer& downstreamOut() override { return out_; }
  void flushDownstream() override { out_.clear(); }
  bool downstreamAboveHighWatermark() const override { return false; }
  void readDisableDownstream(bool) override {}
  void onStreamDone(bool) override {}
  void onTunnelStart(upstream::UpstreamConnection*) override {}
  void onTunnelData(std::string_view) override {}
  void onTunnelClosed() override {}
  const std::string& peerAddress() const override { return addr_; }
  const std::string& peerIp() const override { return ip_; }

private:
  network::Buffer out_;
  std::string addr_ = "192.0.2.1:1";
  std::string ip_ = "192.0.2.1";
};

struct Fired {
  std::vector<int> order;
  static void cb(void* p) {
    auto* tag = static_cast<std::pair<Fired*, int>*>(p);
    tag->first->order.push_back(tag->second);
  }
};

// Runs the loop until `n` callbacks fired or a deadline passes.
void runUntil(event::Dispatcher& d, const Fired& f, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (f.order.size() < n && std::chrono::steady_clock::now() < deadline) {
    uv_run(d.loop(), UV_RUN_NOWAIT);
  }
}

} // namespace

TEST_CASE("ABI timers: fire, cancel, and stale ids after slot reuse", "[filter][timer]") {
  event::Dispatcher d;
  filter::WorkerContext ctx(d, 0);
  Fired f;
  std::pair<Fired*, int> t1{&f, 1}, t2{&f, 2}, t3{&f, 3};
  uint64_t a = ctx.startTimer(nullptr, 0, &Fired::cb, &t1);
  uint64_t b = ctx.startTimer(nullptr, 0, &Fired::cb, &t2);
  CHECK(a != 0);
  CHECK(b != a);
  CHECK(ctx.activeTimers() == 2);
  ctx.cancelTimer(b);
  CHECK(ctx.activeTimers() == 1);
  runUntil(d, f, 1);
  CHECK(f.order == std::vector<int>{1});
  CHECK(ctx.activeTimers() == 0);
  // The freed slot is reused with a new id; the old ids cancel nothing.
  uint64_t c = ctx.startTimer(nullptr, 0, &Fired::cb, &t3);
  CHECK(c != a);
  CHECK(c != b);
  CHECK(((c & 0xffffffffu) == (a & 0xffffffffu) || (c & 0xffffffffu) == (b & 0xffffffffu)));
  ctx.cancelTimer(a);
  ctx.cancelTimer(b);
  ctx.cancelTimer(0);
  ctx.cancelTimer(~0ull);
  CHECK(ctx.activeTimers() == 1);
  runUntil(d, f, 2);
  CHECK(f.order == std::vector<int>{1, 3});
  ctx.shutdown();
  d.closeAll();
}

TEST_CASE("ABI timers: a stream's end cancels only its own timers and posted tasks",
          "[filter][timer]") {
  event::Dispatcher d;
  filter::WorkerContext ctx(d, 0);
  NullOwner oa, ob;
  // Streams own loop handles of their own: they go before the loop's handles are closed.
  auto sap = std::make_unique<filter::Stream>(ctx, oa);
  auto sbp = std::make_unique<filter::Stream>(ctx, ob);
  filter::Stream& sa = *sap;
  filter::Stream& sb = *sbp;
  Fired f;
  std::pair<Fired*, int> tags[6] = {{&f, 1}, {&f, 2}, {&f, 3}, {&f, 4}, {&f, 5}, {&f, 6}};
  uint64_t a1 = ctx.startTimer(&sa, 0, &Fired::cb, &tags[0]);
  ctx.startTimer(&sa, 0, &Fired::cb, &tags[1]);
  ctx.startTimer(&sa, 1, &Fired::cb, &tags[2]);
  ctx.startTimer(&sb, 0, &Fired::cb, &tags[3]);
  ctx.startTimer(nullptr, 0, &Fired::cb, &tags[4]);
  uint64_t b2 = ctx.startTimer(&sb, 1, &Fired::cb, &tags[5]);
  CHECK(ctx.activeTimers() == 6);
  ctx.cancelTimer(a1); // unlinks the last one started on sa... and the list stays intact
  ctx.cancelStreamTimers(&sa);
  CHECK(ctx.activeTimers() == 3);
  CHECK(sa.abiTimers() == nullptr);
  ctx.cancelTimer(b2);
  CHECK(ctx.activeTimers() == 2);
  runUntil(d, f, 2);
  std::vector<int> got = f.order;
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<int>{4, 5});
  CHECK(ctx.activeTimers() == 0);
  CHECK(sb.abiTimers() == nullptr);
  // A stream's timer still pending at worker shutdown is released with it.
  ctx.startTimer(&sb, 1000, &Fired::cb, &tags[0]);
  ctx.shutdown();
  CHECK(sb.abiTimers() == nullptr);
  sap.reset();
  sbp.reset();
  d.closeAll();
}
