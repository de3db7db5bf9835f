#pragma once

// Per-worker state the filter manager and the ABI need: the loop, the cluster pools, the live
// snapshot with this worker's filter states, and ABI timers. Single-threaded (the worker's).

#include "core/event/dispatcher.h"
#include "core/filter/snapshot.h"
#include "core/upstream/pool.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace sluice::filter {

class WorkerContext;
class Stream;

// An ABI timer or posted task (sluice_host_timer_start, sluice_host_post). Slots are pooled per
// worker and keep their libuv timer, so starting, firing and cancelling one allocates nothing
// once the pool has grown to the worker's peak; a stream-bound one is also linked into its
// stream's list (Stream::abiTimers()).
struct AbiTimer {
  event::TimerPtr timer;
  uint32_t slot = 0;
  uint32_t generation = 1; // bumped on every release: a stale id never matches again
  bool active = false;
  sluice_task_callback_t cb = nullptr;
  void* data = nullptr;
  const FilterInstance* owner = nullptr;
  Stream* stream = nullptr;
  AbiTimer* prev = nullptr; // in the stream's list
  AbiTimer* next = nullptr; // in the stream's list, or the free list
};

// A snapshot as one worker sees it: the filters' per-worker states. Streams hold it, so a
// stream finishes on the snapshot it started with.
class WorkerSnapshot {
public:
  WorkerSnapshot(WorkerContext& worker, SnapshotPtr snapshot);
  ~WorkerSnapshot();
  const Snapshot& snapshot() const { return *snapshot_; }
  void* state(size_t listener, size_t filter) const { return states_[listener][filter]; }

private:
  WorkerContext& worker_;
  SnapshotPtr snapshot_;
  std::vector<std::vector<void*>> states_;
  // The pools live when this snapshot was installed: a pool retired by a later reload stays
  // until the streams of this snapshot are done with it.
  std::vector<upstream::ClusterPoolPtr> pools_;
};
using WorkerSnapshotPtr = std::shared_ptr<WorkerSnapshot>;

// A stand-in for every upstream, used by `sluice bench-filter`: a routed request is answered
// with this response in-process once its body is complete, without a connection.
struct SyntheticUpstream {
  uint32_t status = 200;
  std::string body;
};

class WorkerContext {
public:
  WorkerContext(event::Dispatcher& dispatcher, uint32_t index);
  ~WorkerContext();

  event::Dispatcher& dispatcher() { return dispatcher_; }
  uint32_t index() const { return index_; }
  // True on the thread that made this context (its worker's thread).
  bool onOwnThread() const { return std::this_thread::get_id() == thread_; }
  // True on a thread that owns a worker context (a worker; bench-filter's thread). Lets the ABI
  // refuse a stream call from another thread before touching the stream.
  static bool onWorkerThread();
  upstream::ClusterManager& clusters() { return clusters_; }
  // Installs a new snapshot (worker thread): creates filter worker states and pools of new
  // clusters.
  void install(SnapshotPtr snapshot);
  const WorkerSnapshotPtr& current() const { return current_; }
  // Releases everything at shutdown.
  void shutdown();

  // Fast per-worker PRNG (xorshift), for request ids and sampling.
  uint64_t random();

  // ABI timers.
  uint64_t startTimer(Stream* stream, uint64_t ms, sluice_task_callback_t cb, void* data);
  void cancelTimer(uint64_t id);
  void cancelStreamTimers(Stream* stream);
  // Pending ABI timers and posted tasks on this worker (tests).
  size_t activeTimers() const { return active_timers_; }

  // ABI file-descriptor watches (uv_poll_t on this worker's loop). 0 when the fd cannot be
  // watched.
  uint64_t ioWatch(int fd, uint32_t events, sluice_io_callback_t cb, void* data);
  void ioUpdate(uint64_t id, uint32_t events);
  void ioClose(uint64_t id);

  // Where a snapshot's last reference is dropped: handed to the main thread so filter configs
  // are destroyed there.
  static void setReleaseHook(std::function<void(SnapshotPtr)> hook);
  static void release(SnapshotPtr s);

  // Outgoing HTTP calls made through the ABI: every call object ever made (a slot, reused; see
  // http_call.cc) and the indexes of the free ones. A call id names its slot and the slot's use.
  std::vector<std::unique_ptr<event::DeferredDeletable>>& callSlots() { return call_slots_; }
  std::vector<uint32_t>& freeCallSlots() { return free_call_slots_; }

  // Bench mode only (null in a server): see SyntheticUpstream.
  const SyntheticUpstream* syntheticUpstream() const { return synthetic_; }
  void setSyntheticUpstream(const SyntheticUpstream* s) { synthetic_ = s; }

private:
  struct IoWatch;
  static void onIo(uv_poll_t* handle, int status, int events);
  void closeIo(IoWatch* w);

  AbiTimer* takeTimer();
  void releaseTimer(AbiTimer* t);
  void fireTimer(AbiTimer* t);
  event::Dispatcher& dispatcher_;
  uint32_t index_;
  std::thread::id thread_ = std::this_thread::get_id();
  upstream::ClusterManager clusters_;
  WorkerSnapshotPtr current_;
  uint64_t rng_;
  // Every slot ever made (stable addresses); free ones are chained through AbiTimer::next.
  std::vector<std::unique_ptr<AbiTimer>> timers_;
  AbiTimer* free_timers_ = nullptr;
  size_t active_timers_ = 0;
  std::vector<std::unique_ptr<event::DeferredDeletable>> call_slots_;
  std::vector<uint32_t> free_call_slots_;
  const SyntheticUpstream* synthetic_ = nullptr;
  // Freed in the uv_close callback, never while libuv may still use the handle.
  std::unordered_map<uint64_t, IoWatch*> ios_;
  uint64_t next_io_ = 1;
};

} // namespace sluice::filter
