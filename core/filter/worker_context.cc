#include "core/filter/worker_context.h"

#include <chrono>
#include <mutex>

namespace sluice::filter {

namespace {
std::mutex g_release_mutex;
std::function<void(SnapshotPtr)> g_release_hook;
} // namespace

void WorkerContext::setReleaseHook(std::function<void(SnapshotPtr)> hook) {
  std::lock_guard<std::mutex> lock(g_release_mutex);
  g_release_hook = std::move(hook);
}

void WorkerContext::release(SnapshotPtr s) {
  std::function<void(SnapshotPtr)> hook;
  {
    std::lock_guard<std::mutex> lock(g_release_mutex);
    hook = g_release_hook;
  }
  if (hook) {
    hook(std::move(s));
  }
}

WorkerSnapshot::WorkerSnapshot(WorkerContext& worker, SnapshotPtr snapshot)
    : worker_(worker), snapshot_(std::move(snapshot)) {
  for (const auto& c : snapshot_->clusters) {
    pools_.push_back(worker_.clusters().findShared(c->name()));
  }
  for (const auto& l : snapshot_->listeners) {
    std::vector<void*> states;
    for (const auto& f : l.filters) {
      void* st = nullptr;
      if (f->desc->sluice_on_worker_new != nullptr) {
        st = f->desc->sluice_on_worker_new(f->config, reinterpret_cast<sluice_worker_t*>(&worker_));
      }
      states.push_back(st);
    }
    states_.push_back(std::move(states));
  }
}

WorkerSnapshot::~WorkerSnapshot() {
  for (size_t i = 0; i < snapshot_->listeners.size(); i++) {
    const auto& l = snapshot_->listeners[i];
    for (size_t j = 0; j < l.filters.size(); j++) {
      const auto& f = l.filters[j];
      if (f->desc->sluice_on_worker_destroy != nullptr) {
        f->desc->sluice_on_worker_destroy(f->config, states_[i][j]);
      }
    }
  }
  WorkerContext::release(std::move(snapshot_));
}

WorkerContext::WorkerContext(event::Dispatcher& dispatcher, uint32_t index)
    : dispatcher_(dispatcher), index_(index), clusters_(dispatcher) {
  rng_ = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         (0x9E3779B97F4A7C15ull * (index + 1));
  if (rng_ == 0) {
    rng_ = 1;
  }
}

WorkerContext::~WorkerContext() {
  shutdown();
}

void WorkerContext::install(SnapshotPtr snapshot) {
  std::vector<std::string> names;
  for (const auto& c : snapshot->clusters) {
    clusters_.setCluster(c);
    names.push_back(c->name());
  }
  clusters_.retainOnly(names);
  current_ = std::make_shared<WorkerSnapshot>(*this, std::move(snapshot));
}

void WorkerContext::shutdown() {
  timers_.clear();
  calls_.clear();
  current_.reset();
  clusters_.closeAll();
}

uint64_t WorkerContext::random() {
  uint64_t x = rng_;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_ = x;
  return x;
}

uint64_t WorkerContext::startTimer(Stream* stream, uint64_t ms, sluice_task_callback_t cb,
                                   void* data) {
  uint64_t id = next_timer_++;
  auto timer = dispatcher_.createTimer([this, id, cb, data] {
    auto it = timers_.find(id);
    if (it == timers_.end()) {
      return;
    }
    // Keep the timer object alive until the callback returns.
    event::TimerPtr keep = std::move(it->second.timer);
    timers_.erase(it);
    cb(data);
  });
  timer->enable(ms);
  timers_.emplace(id, TimerEntry{std::move(timer), stream});
  return id;
}

void WorkerContext::cancelTimer(uint64_t id) {
  timers_.erase(id);
}

void WorkerContext::cancelStreamTimers(Stream* stream) {
  if (timers_.empty()) {
    return;
  }
  for (auto it = timers_.begin(); it != timers_.end();) {
    if (it->second.stream == stream) {
      it = timers_.erase(it);
    } else {
      ++it;
    }
  }
}

} // namespace sluice::filter
