#pragma once

// The libuv wrappers: one Dispatcher per thread (a worker or the main thread) owns a uv_loop_t.
// Everything here is single-threaded except Dispatcher::post, which any thread may call.
// Objects owning a libuv handle are freed only after the handle's close callback.

#include "core/event/ring.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <uv.h>

namespace sluice::event {

class Dispatcher;

// A one-shot timer. Owned by its user through TimerPtr; destroying the pointer stops the timer
// and frees the handle after libuv's close callback.
//
// Re-arming and disabling are lazy: the data path arms and disarms several timers per request
// (header, idle, request and pool timeouts), nearly always to a later deadline or before they
// fire. enable() only records the new deadline while the libuv timer is already due no later
// than it, and disable() only clears it; when the libuv timer fires early it is started again
// for the rest, and when it fires disabled it does nothing. The callback still runs once, at
// the last deadline set, and never after disable().
class Timer {
public:
  using Callback = std::function<void()>;
  void enable(uint64_t ms);
  void disable() { armed_ = false; }
  bool enabled() const { return armed_; }

private:
  friend class Dispatcher;
  friend struct TimerDeleter;
  Timer(Dispatcher& d, Callback cb);
  static void onTimer(uv_timer_t* t);
  void close();

  uv_timer_t handle_;
  Callback cb_;
  uint64_t deadline_ = 0; // loop time (ms) at which cb_ runs, while armed_
  uint64_t due_ = 0;      // loop time at which the libuv timer fires, while it is active
  bool armed_ = false;
};

struct TimerDeleter {
  void operator()(Timer* t) const { t->close(); }
};
using TimerPtr = std::unique_ptr<Timer, TimerDeleter>;

// Base for objects destroyed through the deferred-delete list (after the current callback
// unwinds, so `this` stays valid for the rest of the call stack).
class DeferredDeletable {
public:
  virtual ~DeferredDeletable() = default;
};

// An object that asks to be called back once the current callback has unwound (in the loop's
// check phase, before the deferred deletes), without allocating: the list link lives in the
// object. Destroying a queued object takes it off the list.
class DeferredCall {
public:
  virtual void onDeferredCall() = 0;

protected:
  DeferredCall() = default;
  ~DeferredCall();
  DeferredCall(const DeferredCall&) = delete;
  DeferredCall& operator=(const DeferredCall&) = delete;

private:
  friend class Dispatcher;
  Dispatcher* queued_in_ = nullptr;
  DeferredCall* prev_ = nullptr;
  DeferredCall* next_ = nullptr;
};

// How connections wait for and move bytes, chosen once per process (`sluice run --io`):
// io_uring where the kernel allows it (Auto), or libuv's epoll loop.
enum class IoBackend { Auto, Epoll, IoUring };

class Dispatcher {
public:
  static void setIoBackend(IoBackend b);
  static IoBackend ioBackend();

  Dispatcher();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  uv_loop_t* loop() { return &loop_; }
  TimerPtr createTimer(Timer::Callback cb);
  // Thread-safe: run cb on this dispatcher's thread on its next iteration.
  void post(std::function<void()> cb);
  void deferredDelete(std::unique_ptr<DeferredDeletable> obj);
  // Queues c->onDeferredCall() once (a no-op while it is queued already).
  void deferCall(DeferredCall& c);
  void run();  // until stop(), exit() or nothing is left
  void stop(); // thread-safe
  // From this dispatcher's thread: run() returns once the current callback unwinds.
  void exit();
  // One turn of the loop: waits for something to happen and handles it.
  void runOnce();
  // The ring connections on this dispatcher use, or nullptr: the epoll loop (IoBackend::Epoll, or
  // io_uring unavailable). Opened by the first call, which must come from the thread that runs
  // this dispatcher (the kernel ties the ring to it).
  Ring* ring() {
    if (!ring_checked_) {
      openRing();
    }
    return ring_.get();
  }
  // True while closeAll() drains the ring: completions must not queue new operations.
  bool draining() const { return draining_; }
  // Requests sent on outgoing connections whose reply has not started to come (kept by
  // Connection).
  void addRepliesDue(int delta) { replies_due_ += delta; }
  int repliesDue() const { return replies_due_; }
  // A send queued on an accepted connection this turn (kept by Connection): an answer, which
  // its client may follow with its next request.
  void addAnswerQueued() { answers_queued_++; }
  int answersQueued() const { return answers_queued_; }
  // With the ring (and a kernel with min-wait), how many completions the wait of a turn asks
  // for: the replies due and, for each answer the turn sends, its client's next request (two
  // at most; at most 64 in all). A wait for two or more ends once kMinWaitUs have passed with
  // at least one completion in, so the replies of a burst, and the requests that come with
  // them, are handled in one turn instead of one turn each. A lone request or reply is waited
  // for alone and handled the moment it comes: asking for more there would hold every request
  // of a single client kMinWaitUs at each hop.
  static unsigned waitTarget(int replies_due, int answers_queued) {
    const int due = replies_due + (answers_queued > 2 ? 2 : answers_queued);
    return due < 1 ? 1U : due > 64 ? 64U : static_cast<unsigned>(due);
  }
  static constexpr unsigned kMinWaitUs = Ring::kMinWaitUs;
  // Monotonic loop time in ms (cached per iteration, no syscall).
  uint64_t nowMs() const { return uv_now(const_cast<uv_loop_t*>(&loop_)); }
  // Closes every handle still open (used at shutdown) and drains the loop.
  void closeAll();

private:
  struct EpollOp : RingOp {
    Dispatcher* self = nullptr;
  };
  static void onPost(uv_async_t* a);
  static void onEpollReady(RingOp* op, int32_t res, uint32_t flags);
  void openRing();
  bool turn(); // one turn with the ring; false once the loop should end
  bool libuvDue();
  void drainRing();
  void runPosted();
  void clearDeferred();
  friend class DeferredCall;
  void unlinkCall(DeferredCall& c);

  uv_loop_t loop_;
  uv_async_t async_;
  uv_check_t check_;
  std::mutex post_mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> running_;
  std::vector<std::unique_ptr<DeferredDeletable>> deferred_;
  std::vector<std::unique_ptr<DeferredDeletable>> deleting_;
  DeferredCall* calls_head_ = nullptr; // FIFO of queued DeferredCalls
  DeferredCall* calls_tail_ = nullptr;
  bool stop_requested_{false};
  bool exit_{false};
  // io_uring: the ring, and libuv's epoll descriptor polled through it (timers, accepts,
  // connects, posted work and signals stay libuv's).
  std::unique_ptr<Ring> ring_;
  bool ring_checked_ = false;
  bool draining_ = false;
  EpollOp epoll_op_;
  bool epoll_armed_ = false;
  bool epoll_ready_ = false;
  int replies_due_ = 0;
  int answers_queued_ = 0;
};

} // namespace sluice::event
