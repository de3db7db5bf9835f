#include "core/event/dispatcher.h"

#include "core/common/assert.h"
#include "core/common/logger.h"

#include <atomic>
#include <cerrno>

namespace sluice::event {

namespace {

std::atomic<IoBackend> g_backend{IoBackend::Auto};
std::atomic<bool> g_fallback_logged{false};
std::atomic<bool> g_wait_logged{false};

// libuv applies a changed interest (a connect started, a listener re-armed after an accept) with
// epoll_ctl at its next poll: until then the epoll descriptor cannot report it, so a loop that
// waits in io_uring runs libuv's poll first. The queue's first word is its `next` pointer in
// every libuv 1.x layout (void*[2], struct uv__queue); an empty queue points at itself.
bool watchersPending(uv_loop_t* loop) {
  void* const* q = reinterpret_cast<void* const*>(&loop->watcher_queue);
  return q[0] != static_cast<const void*>(q);
}

} // namespace

void Dispatcher::setIoBackend(IoBackend b) {
  g_backend.store(b, std::memory_order_relaxed);
}

IoBackend Dispatcher::ioBackend() {
  return g_backend.load(std::memory_order_relaxed);
}

Timer::Timer(Dispatcher& d, Callback cb) : cb_(std::move(cb)) {
  uv_timer_init(d.loop(), &handle_);
  handle_.data = this;
}

void Timer::enable(uint64_t ms) {
  uint64_t now = uv_now(handle_.loop);
  deadline_ = now + ms;
  armed_ = true;
  if (uv_is_active(reinterpret_cast<const uv_handle_t*>(&handle_)) && due_ <= deadline_) {
    return; // fires first at due_, then starts again for the rest
  }
  due_ = deadline_;
  uv_timer_start(&handle_, &Timer::onTimer, ms, 0);
}

void Timer::onTimer(uv_timer_t* t) {
  auto* self = static_cast<Timer*>(t->data);
  if (!self->armed_) {
    return; // disabled after it was started
  }
  uint64_t now = uv_now(t->loop);
  if (now < self->deadline_) {
    // Re-armed to a later deadline since it was started.
    self->due_ = self->deadline_;
    uv_timer_start(t, &Timer::onTimer, self->deadline_ - now, 0);
    return;
  }
  self->armed_ = false;
  self->cb_();
}

void Timer::close() {
  uv_timer_stop(&handle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_),
           [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
}

Dispatcher::Dispatcher() {
  SLUICE_RELEASE_ASSERT(uv_loop_init(&loop_) == 0, "uv_loop_init");
  uv_async_init(&loop_, &async_, &Dispatcher::onPost);
  async_.data = this;
  uv_check_init(&loop_, &check_);
  check_.data = this;
  uv_check_start(&check_,
                 [](uv_check_t* c) { static_cast<Dispatcher*>(c->data)->clearDeferred(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
}

Dispatcher::~Dispatcher() {
  closeAll();
  uv_loop_close(&loop_);
}

TimerPtr Dispatcher::createTimer(Timer::Callback cb) {
  return TimerPtr(new Timer(*this, std::move(cb)));
}

void Dispatcher::post(std::function<void()> cb) {
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    posted_.push_back(std::move(cb));
  }
  uv_async_send(&async_);
}

void Dispatcher::onPost(uv_async_t* a) {
  static_cast<Dispatcher*>(a->data)->runPosted();
}

void Dispatcher::runPosted() {
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    running_.swap(posted_);
  }
  for (auto& cb : running_) {
    cb();
  }
  running_.clear();
  if (stop_requested_) {
    exit();
  }
}

void Dispatcher::exit() {
  exit_ = true;
  if (ring_ == nullptr) {
    uv_stop(&loop_); // with the ring, turn() sees exit_ (a stop flag set outside uv_run would
                     // stay set and end closeAll()'s uv_run before it drains)
  }
}

void Dispatcher::openRing() {
  ring_checked_ = true;
  if (ioBackend() == IoBackend::Epoll) {
    return;
  }
  std::string why;
  ring_ = Ring::open(why);
  if (ring_ == nullptr) {
    if (!g_fallback_logged.exchange(true)) {
      SLUICE_LOG(Warn, "io", "io_uring unavailable ({}): connections use epoll", why);
    }
    return;
  }
  epoll_op_.complete = &Dispatcher::onEpollReady;
  epoll_op_.self = this;
  if (ring_->kernelMinWait() && !g_wait_logged.exchange(true)) {
    const int64_t cost = Ring::shortTimerCostNs();
    if (ring_->minWait()) {
      SLUICE_LOG(Info, "io",
                 "io_uring waits use a {} µs min-wait (a short kernel timer costs {} ns here)",
                 kMinWaitUs, cost);
    } else {
      SLUICE_LOG(Info, "io",
                 "io_uring waits take no min-wait: arming and cancelling a short kernel timer "
                 "costs {} ns here (a hypervisor trapping the timer), over the {} ns budget",
                 cost, Ring::kMinWaitTimerBudgetNs);
    }
  }
}

void Dispatcher::onEpollReady(RingOp* op, int32_t, uint32_t) {
  auto* self = static_cast<EpollOp*>(op)->self;
  self->epoll_armed_ = false;
  self->epoll_ready_ = true;
}

// libuv has work for a pass: its epoll descriptor is ready, interest changes wait to be applied,
// or a timer, closing handle or pending callback is due.
bool Dispatcher::libuvDue() {
  return epoll_ready_ || watchersPending(&loop_) || uv_backend_timeout(&loop_) == 0;
}

// Waits (unless something is due already), then handles what came: the ring's completions,
// then libuv's part when it has any (due timers, epoll events, closing handles, interest changes
// to apply), then the deferred calls and deletes.
bool Dispatcher::turn() {
  Ring& r = *ring_;
  if (!epoll_armed_ && !draining_) {
    // One-shot: arming checks readiness at once, so events libuv left ready (level-triggered)
    // are reported again, which a multishot poll (woken only by new events) would miss.
    r.poll(uv_backend_fd(&loop_), &epoll_op_);
    epoll_armed_ = true;
  }
  r.submitAndWait(libuvDue() ? 0 : uv_backend_timeout(&loop_),
                  waitTarget(replies_due_, answers_queued_), kMinWaitUs);
  answers_queued_ = 0;
  uv_update_time(&loop_);
  r.reap();
  clearDeferred();
  if (libuvDue()) {
    epoll_ready_ = false;
    uv_run(&loop_, UV_RUN_NOWAIT);
    clearDeferred();
  }
  if (exit_) {
    exit_ = false;
    return false;
  }
  return uv_loop_alive(&loop_) || r.live() > (epoll_armed_ ? 1U : 0U);
}

void Dispatcher::runOnce() {
  if (ring() == nullptr) {
    uv_run(&loop_, UV_RUN_ONCE);
    return;
  }
  if (!turn()) {
    exit_ = false;
  }
}

// Cancels every operation and reaps until none is left, so that no completion (nor the kernel)
// touches memory after the handles close.
void Dispatcher::drainRing() {
  if (ring_ == nullptr) {
    return;
  }
  draining_ = true;
  ring_->cancelAll();
  for (int i = 0; i < 100 && ring_->live() > 0; i++) {
    ring_->submitAndWait(10);
    ring_->reap();
    clearDeferred();
  }
  epoll_armed_ = false;
  epoll_ready_ = false;
  draining_ = false;
}

void Dispatcher::deferredDelete(std::unique_ptr<DeferredDeletable> obj) {
  deferred_.push_back(std::move(obj));
}

DeferredCall::~DeferredCall() {
  if (queued_in_ != nullptr) {
    queued_in_->unlinkCall(*this);
  }
}

void Dispatcher::deferCall(DeferredCall& c) {
  if (c.queued_in_ != nullptr) {
    return;
  }
  c.queued_in_ = this;
  c.prev_ = calls_tail_;
  c.next_ = nullptr;
  (calls_tail_ != nullptr ? calls_tail_->next_ : calls_head_) = &c;
  calls_tail_ = &c;
}

void Dispatcher::unlinkCall(DeferredCall& c) {
  (c.prev_ != nullptr ? c.prev_->next_ : calls_head_) = c.next_;
  (c.next_ != nullptr ? c.next_->prev_ : calls_tail_) = c.prev_;
  c.prev_ = c.next_ = nullptr;
  c.queued_in_ = nullptr;
}

void Dispatcher::clearDeferred() {
  while (calls_head_ != nullptr || !deferred_.empty()) {
    // Calls first: one may queue a delete (or another call), and none may see a deleted object.
    while (calls_head_ != nullptr) {
      DeferredCall* c = calls_head_;
      unlinkCall(*c);
      c->onDeferredCall();
    }
    deleting_.swap(deferred_);
    deleting_.clear();
  }
}

void Dispatcher::run() {
  if (ring() == nullptr) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    exit_ = false;
    clearDeferred();
    return;
  }
  while (turn()) {
  }
  clearDeferred();
}

void Dispatcher::stop() {
  post([this] { stop_requested_ = true; });
}

void Dispatcher::closeAll() {
  clearDeferred();
  drainRing();
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) {
          uv_close(h, nullptr);
        }
      },
      nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  clearDeferred();
}

} // namespace sluice::event
