#include "core/event/dispatcher.h"

#include "core/common/assert.h"

namespace sluice::event {

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
    uv_stop(&loop_);
  }
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
  uv_run(&loop_, UV_RUN_DEFAULT);
  clearDeferred();
}

void Dispatcher::stop() {
  post([this] { stop_requested_ = true; });
}

void Dispatcher::closeAll() {
  clearDeferred();
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
