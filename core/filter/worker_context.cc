#include "core/filter/worker_context.h"

#include "core/common/logger.h"
#include "core/filter/stream.h"

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
        RunningFilterScope scope(f.get());
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
        RunningFilterScope scope(f.get());
        f->desc->sluice_on_worker_destroy(f->config, states_[i][j]);
      }
    }
  }
  WorkerContext::release(std::move(snapshot_));
}

namespace {
thread_local int t_worker_contexts = 0; // worker contexts made on this thread and alive
} // namespace

bool WorkerContext::onWorkerThread() {
  return t_worker_contexts > 0;
}

WorkerContext::WorkerContext(event::Dispatcher& dispatcher, uint32_t index)
    : dispatcher_(dispatcher), index_(index), clusters_(dispatcher) {
  t_worker_contexts++;
  rng_ = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         (0x9E3779B97F4A7C15ull * (index + 1));
  if (rng_ == 0) {
    rng_ = 1;
  }
}

WorkerContext::~WorkerContext() {
  shutdown();
  if (onOwnThread()) {
    t_worker_contexts--;
  }
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
  for (auto& t : timers_) {
    if (t->active) {
      releaseTimer(t.get());
    }
  }
  free_timers_ = nullptr;
  timers_.clear();
  free_call_slots_.clear();
  call_slots_.clear();
  current_.reset();
  if (!ios_.empty()) {
    // A filter broke the contract (close before sluice_on_worker_destroy returns); the fds are
    // the filter's, so only the watches go.
    Logger::write(LogLevel::Warn, "filter",
                  fmt::format("{} file-descriptor watch(es) left open at worker shutdown; closed",
                              ios_.size()));
    while (!ios_.empty()) {
      closeIo(ios_.begin()->second);
    }
  }
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

// A timer id is the slot index (low 32 bits) and the slot's generation (high 32 bits), so
// cancelling an id that already fired or was cancelled is harmless even after the slot is reused.
AbiTimer* WorkerContext::takeTimer() {
  if (free_timers_ != nullptr) {
    AbiTimer* t = free_timers_;
    free_timers_ = t->next;
    t->next = nullptr;
    return t;
  }
  auto t = std::make_unique<AbiTimer>();
  t->slot = static_cast<uint32_t>(timers_.size());
  AbiTimer* raw = t.get();
  raw->timer = dispatcher_.createTimer([this, raw] { fireTimer(raw); });
  timers_.push_back(std::move(t));
  return raw;
}

void WorkerContext::releaseTimer(AbiTimer* t) {
  if (t->stream != nullptr) {
    if (t->prev != nullptr) {
      t->prev->next = t->next;
    } else {
      t->stream->abiTimers() = t->next;
    }
    if (t->next != nullptr) {
      t->next->prev = t->prev;
    }
  }
  t->timer->disable();
  t->active = false;
  t->generation++;
  if (t->generation == 0) {
    t->generation = 1; // ids are never 0
  }
  t->cb = nullptr;
  t->data = nullptr;
  t->owner = nullptr;
  t->stream = nullptr;
  t->prev = nullptr;
  t->next = free_timers_;
  free_timers_ = t;
  active_timers_--;
}

void WorkerContext::fireTimer(AbiTimer* t) {
  if (!t->active) {
    return;
  }
  sluice_task_callback_t cb = t->cb;
  void* data = t->data;
  const FilterInstance* owner = t->owner;
  releaseTimer(t); // the slot may be taken again inside cb
  RunningFilterScope scope(owner);
  cb(data);
}

uint64_t WorkerContext::startTimer(Stream* stream, uint64_t ms, sluice_task_callback_t cb,
                                   void* data) {
  AbiTimer* t = takeTimer();
  t->active = true;
  t->cb = cb;
  t->data = data;
  t->owner = runningFilter(); // the callback runs as that filter
  t->stream = stream;
  if (stream != nullptr) {
    t->next = stream->abiTimers();
    if (t->next != nullptr) {
      t->next->prev = t;
    }
    stream->abiTimers() = t;
  }
  active_timers_++;
  t->timer->enable(ms);
  return (static_cast<uint64_t>(t->generation) << 32) | t->slot;
}

void WorkerContext::cancelTimer(uint64_t id) {
  uint64_t slot = id & 0xffffffffu;
  if (slot >= timers_.size()) {
    return;
  }
  AbiTimer* t = timers_[slot].get();
  if (t->active && t->generation == static_cast<uint32_t>(id >> 32)) {
    releaseTimer(t);
  }
}

struct WorkerContext::IoWatch {
  uv_poll_t handle;
  uint64_t id;
  sluice_io_callback_t cb;
  void* data;
  bool closed;
  const FilterInstance* owner; // the filter that was running when the watch was made
};

namespace {
int uvEvents(uint32_t events) {
  return ((events & SLUICE_IO_READABLE) != 0 ? UV_READABLE : 0) |
         ((events & SLUICE_IO_WRITABLE) != 0 ? UV_WRITABLE : 0);
}
} // namespace

uint64_t WorkerContext::ioWatch(int fd, uint32_t events, sluice_io_callback_t cb, void* data) {
  if (fd < 0 || cb == nullptr) {
    return 0;
  }
  auto* w = new IoWatch{};
  if (uv_poll_init_socket(dispatcher_.loop(), &w->handle, fd) != 0) {
    delete w; // never registered with the loop
    return 0;
  }
  w->handle.data = w;
  w->id = next_io_++;
  w->cb = cb;
  w->data = data;
  w->owner = runningFilter();
  ios_.emplace(w->id, w);
  ioUpdate(w->id, events);
  return w->id;
}

void WorkerContext::onIo(uv_poll_t* handle, int status, int events) {
  auto* w = static_cast<IoWatch*>(handle->data);
  if (w->closed) {
    return;
  }
  uint32_t e = 0;
  if (status < 0) {
    e = SLUICE_IO_READABLE | SLUICE_IO_WRITABLE | SLUICE_IO_ERROR;
  } else {
    e = ((events & (UV_READABLE | UV_DISCONNECT)) != 0 ? SLUICE_IO_READABLE : 0) |
        ((events & UV_WRITABLE) != 0 ? SLUICE_IO_WRITABLE : 0);
  }
  // The watch may be closed inside cb; it is freed only in the close callback, later.
  RunningFilterScope scope(w->owner);
  w->cb(w->data, e);
}

void WorkerContext::ioUpdate(uint64_t id, uint32_t events) {
  auto it = ios_.find(id);
  if (it == ios_.end()) {
    return;
  }
  int uv = uvEvents(events);
  if (uv == 0) {
    uv_poll_stop(&it->second->handle);
  } else {
    uv_poll_start(&it->second->handle, uv, &WorkerContext::onIo);
  }
}

void WorkerContext::ioClose(uint64_t id) {
  auto it = ios_.find(id);
  if (it != ios_.end()) {
    closeIo(it->second);
  }
}

void WorkerContext::closeIo(IoWatch* w) {
  ios_.erase(w->id);
  w->closed = true;
  uv_poll_stop(&w->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
           [](uv_handle_t* h) { delete static_cast<IoWatch*>(h->data); });
}

void WorkerContext::cancelStreamTimers(Stream* stream) {
  while (stream->abiTimers() != nullptr) {
    releaseTimer(stream->abiTimers());
  }
}

} // namespace sluice::filter
