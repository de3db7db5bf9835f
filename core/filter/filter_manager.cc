#include "core/filter/filter_manager.h"

#include "core/common/logger.h"
#include "core/filter/stream.h"
#include "core/filter/stream_stats.h"
#include "core/filter/worker_context.h"

namespace sluice::filter {

namespace {
thread_local const FilterInstance* t_running_filter = nullptr;
} // namespace

const FilterInstance* runningFilter() {
  return t_running_filter;
}

RunningFilterScope::RunningFilterScope(const FilterInstance* f) : outer_(t_running_filter) {
  t_running_filter = f;
}

RunningFilterScope::~RunningFilterScope() {
  t_running_filter = outer_;
}

void FilterManager::createFilters(const WorkerSnapshot& snap, size_t listener_index,
                                  sluice_stream_t* handle) {
  const auto& fl = snap.snapshot().listeners[listener_index].filters;
  for (size_t i = 0; i < fl.size(); i++) {
    const FilterInstance* f = fl[i].get();
    void* state = snap.state(listener_index, i);
    void* obj = nullptr;
    {
      RunningFilterScope scope(f);
      obj = f->desc->sluice_on_stream_new(f->config, state, handle);
    }
    filters_.push_back(ActiveFilter{f, state, obj});
  }
  resp_top_ = filters_.size();
}

void FilterManager::reset() {
  filters_.clear();
  dir_[SLUICE_DIRECTION_REQUEST] = DirectionState{};
  dir_[SLUICE_DIRECTION_RESPONSE] = DirectionState{};
  resp_top_ = 0;
  cur_filter_ = SIZE_MAX;
  in_hook_ = 0;
}

void FilterManager::notifyComplete(sluice_stream_t* handle) {
  for (auto& f : filters_) {
    if (f.object != nullptr && f.instance->desc->sluice_on_stream_complete != nullptr) {
      RunningFilterScope scope(f.instance);
      f.instance->desc->sluice_on_stream_complete(f.object, handle);
    }
  }
}

void FilterManager::destroyFilters() {
  for (auto& f : filters_) {
    if (f.object != nullptr && f.instance->desc->sluice_on_stream_destroy != nullptr) {
      RunningFilterScope scope(f.instance);
      f.instance->desc->sluice_on_stream_destroy(f.object);
    }
    f.object = nullptr;
  }
  filters_.clear();
}

sluice_status_t FilterManager::runHook(size_t i, HookFn hook, bool end_stream, bool check_status) {
  return guardHook(
      i, [&](ActiveFilter& f) { return hook(f.object, stream_.handle(), end_stream); },
      check_status);
}

template <typename Call>
sluice_status_t FilterManager::guardHook(size_t i, Call&& call, bool check_status) {
  ActiveFilter& f = filters_[i];
  cur_filter_ = i;
  in_hook_++;
  const FilterInstance* outer = t_running_filter;
  t_running_filter = f.instance;
  sluice_status_t st = call(f);
  t_running_filter = outer;
  in_hook_--;
  cur_filter_ = SIZE_MAX;
  if (check_status && static_cast<uint32_t>(st) > SLUICE_STATUS_STOP_AND_BUFFER &&
      stream_.acceptsLocalReply()) {
    // Not a sluice_status_t: the filter is broken. End the stream rather than guess.
    SLUICE_LOG(Error, "filter", "filter \"{}\" ({}) returned an invalid status {}; answering 500",
               f.instance->name, f.instance->type, static_cast<uint32_t>(st));
    stats::recordFilterError(*f.instance);
    stream_.failFilter();
    return SLUICE_STATUS_CONTINUE;
  }
  return st;
}

void FilterManager::pause(sluice_direction_t dir, sluice_status_t st, size_t at) {
  DirectionState& d = dir_[dir];
  d.pause = st == SLUICE_STATUS_STOP ? Pause::Stop : Pause::Buffer;
  d.pause_at = at;
}

void FilterManager::runHeaders(sluice_direction_t dir, size_t from) {
  bool request = dir == SLUICE_DIRECTION_REQUEST;
  DirectionState& d = dir_[dir];
  bool end_stream = stream_.headersEndStream(dir);
  for (size_t i = from; i != end(dir); i = after(dir, i)) {
    ActiveFilter& f = filters_[i];
    const sluice_filter_descriptor_t* desc = f.instance->desc;
    HookFn hook = request ? desc->sluice_on_request_headers : desc->sluice_on_response_headers;
    if (f.object == nullptr || hook == nullptr) {
      continue;
    }
    sluice_status_t st = runHook(i, hook, end_stream, true);
    if (stream_.afterHook()) {
      return;
    }
    if (st == SLUICE_STATUS_CONTINUE) {
      continue;
    }
    if (request) {
      if (st == SLUICE_STATUS_STOP_AND_BUFFER) {
        if (end_stream) {
          continue; // nothing to buffer
        }
        d.skip_body = i;
      }
    } else {
      d.held = true;
    }
    pause(dir, st, i);
    return;
  }
  d.headers_done = true;
  stream_.headersDone(dir);
}

void FilterManager::runBody(sluice_direction_t dir, size_t from, bool end_stream) {
  bool request = dir == SLUICE_DIRECTION_REQUEST;
  DirectionState& d = dir_[dir];
  if (stream_.anyBodyHook(dir)) {
    for (size_t i = from; i != end(dir); i = after(dir, i)) {
      ActiveFilter& f = filters_[i];
      const sluice_filter_descriptor_t* desc = f.instance->desc;
      HookFn hook = request ? desc->sluice_on_request_body : desc->sluice_on_response_body;
      if (f.object == nullptr || hook == nullptr || i == d.skip_body) {
        continue;
      }
      sluice_status_t st = runHook(i, hook, end_stream, true);
      if (stream_.afterHook()) {
        return;
      }
      if (st == SLUICE_STATUS_STOP || (st == SLUICE_STATUS_STOP_AND_BUFFER && !end_stream)) {
        pause(dir, st, i);
        if (!request && st == SLUICE_STATUS_STOP_AND_BUFFER) {
          d.held = d.held || !stream_.responseStarted();
        }
        return;
      }
    }
  }
  stream_.bodyDone(dir, end_stream);
}

bool FilterManager::runTrailers(sluice_direction_t dir) {
  bool request = dir == SLUICE_DIRECTION_REQUEST;
  for (size_t i = first(dir); i != end(dir); i = after(dir, i)) {
    const sluice_filter_descriptor_t* d = filters_[i].instance->desc;
    auto hook = request ? d->sluice_on_request_trailers : d->sluice_on_response_trailers;
    if (filters_[i].object == nullptr || hook == nullptr) {
      continue;
    }
    // Trailers end the message: a trailers hook cannot pause it (STOP counts as CONTINUE).
    guardHook(
        i, [&](ActiveFilter& f) { return hook(f.object, stream_.handle()); }, true);
    if (stream_.afterHook()) {
      return false;
    }
  }
  return true;
}

bool FilterManager::messageComplete(sluice_direction_t dir) {
  bool request = dir == SLUICE_DIRECTION_REQUEST;
  DirectionState& d = dir_[dir];
  if (d.pause != Pause::Buffer) {
    return d.pause == Pause::None && d.headers_done;
  }
  size_t at = d.pause_at;
  d.pause = Pause::None;
  if (d.headers_done) {
    // A body hook buffered: it gets the whole body now, and the ones after it.
    runBody(dir, at, true);
    return false;
  }
  // A headers hook asked for the whole body: give it, then run the remaining headers hooks.
  const sluice_filter_descriptor_t* desc = filters_[at].instance->desc;
  HookFn hook = request ? desc->sluice_on_request_body : desc->sluice_on_response_body;
  if (hook != nullptr) {
    // The response side has always ignored this hook's status; the request side honours STOP.
    sluice_status_t st = runHook(at, hook, true, request);
    if (stream_.afterHook()) {
      return false;
    }
    if (request && st == SLUICE_STATUS_STOP) {
      pause(dir, st, at);
      return false;
    }
  }
  d.skip_body = at;
  runHeaders(dir, after(dir, at));
  return false;
}

void FilterManager::resume(sluice_direction_t dir) {
  if (!stream_.active() || in_hook_ > 0) {
    return;
  }
  dir = dir == SLUICE_DIRECTION_REQUEST ? SLUICE_DIRECTION_REQUEST : SLUICE_DIRECTION_RESPONSE;
  DirectionState& d = dir_[dir];
  if (d.pause == Pause::None) {
    return;
  }
  size_t at = d.pause_at;
  d.pause = Pause::None;
  if (!d.headers_done) {
    runHeaders(dir, after(dir, at));
  } else {
    runBody(dir, after(dir, at), stream_.messageEnded(dir));
  }
}

bool FilterManager::runLocalReplyHeaders(bool end_stream) {
  // The replying hook is still on the stack; these hooks run as if none were.
  int saved = in_hook_;
  in_hook_ = 0;
  for (size_t i = first(SLUICE_DIRECTION_RESPONSE); i != SIZE_MAX; i--) {
    ActiveFilter& f = filters_[i];
    auto hook = f.instance->desc->sluice_on_response_headers;
    if (f.object != nullptr && hook != nullptr) {
      runHook(i, hook, end_stream, false);
      if (!stream_.active()) {
        in_hook_ = saved;
        return false;
      }
    }
  }
  in_hook_ = saved;
  return true;
}

} // namespace sluice::filter
