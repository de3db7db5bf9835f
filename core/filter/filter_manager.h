#pragma once

// The filter chain of one stream: creates each filter's per-stream object, runs the hooks of
// either direction (request hooks in chain order, response hooks in reverse) and remembers where
// a filter paused iteration, so resume() and the end of a message continue from there. One code
// path serves both directions; what follows a finished iteration (forwarding the request,
// writing the response) belongs to the Stream, which the manager calls directly (no virtual
// dispatch on the data path).

#include "core/filter/snapshot.h"
#include "sluice/filter.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::filter {

class Stream;
class WorkerSnapshot;

struct ActiveFilter {
  const FilterInstance* instance;
  void* worker_state;
  void* object; // from sluice_on_stream_new; null = filter skipped for this stream
};

// The filter whose code this thread is running (null outside filter code), for crash reports and
// error messages: set around every hook, worker-state and stream-object call, and around every
// callback the host delivers to a filter (timers, posted work, HTTP call answers, fd watches),
// which inherit the filter that was running when they were registered.
const FilterInstance* runningFilter();
class RunningFilterScope {
public:
  explicit RunningFilterScope(const FilterInstance* f);
  ~RunningFilterScope();
  RunningFilterScope(const RunningFilterScope&) = delete;
  RunningFilterScope& operator=(const RunningFilterScope&) = delete;

private:
  const FilterInstance* outer_;
};

class FilterManager {
public:
  enum class Pause : uint8_t { None, Stop, Buffer };

  explicit FilterManager(Stream& stream) : stream_(stream) { filters_.reserve(8); }

  // Forgets the previous exchange (its filters must be destroyed already).
  void reset();
  // A new exchange: one object per filter of the listener's chain (sluice_on_stream_new).
  void createFilters(const WorkerSnapshot& snap, size_t listener_index, sluice_stream_t* handle);
  // The stream ended: sluice_on_stream_complete of every filter (chain order).
  void notifyComplete(sluice_stream_t* handle);
  // Then sluice_on_stream_destroy of every filter; the chain is empty afterwards.
  void destroyFilters();

  // Filter indices in a direction's order: the first one, the one after i, and the end marker.
  size_t first(sluice_direction_t dir) const {
    return dir == SLUICE_DIRECTION_REQUEST ? 0 : resp_top_ - 1;
  }
  static size_t after(sluice_direction_t dir, size_t i) {
    return dir == SLUICE_DIRECTION_REQUEST ? i + 1 : i - 1;
  }

  // Headers hooks from filter `from` on; when all continued, Stream::headersDone(dir).
  void runHeaders(sluice_direction_t dir, size_t from);
  // Body hooks from filter `from` on (the buffered body, `end` = it is the last of it); when all
  // continued, Stream::bodyDone(dir, end).
  void runBody(sluice_direction_t dir, size_t from, bool end);
  // The trailers hooks of a complete message; false if the stream ended meanwhile.
  bool runTrailers(sluice_direction_t dir);
  // The whole message arrived: a filter that asked for the whole body gets it, and iteration goes
  // on. True when nothing is paused and the caller runs the body hooks itself.
  bool messageComplete(sluice_direction_t dir);
  // sluice_host_continue: iteration goes on after the filter that paused.
  void resume(sluice_direction_t dir);
  // A local reply: the response headers hooks of the filters below the replying one; false if
  // the stream ended in one of them.
  bool runLocalReplyHeaders(bool end_stream);

  bool headersDone(sluice_direction_t dir) const { return dir_[dir].headers_done; }
  bool paused(sluice_direction_t dir) const { return dir_[dir].pause != Pause::None; }
  // The response head waits for a filter (its headers hooks paused, or it buffers the body).
  bool responseHeld() const { return dir_[SLUICE_DIRECTION_RESPONSE].held; }
  void holdResponse() { dir_[SLUICE_DIRECTION_RESPONSE].held = true; }
  // Response hooks run on filters below `top` only (a request hook answered locally).
  void limitResponse(size_t top) { resp_top_ = top; }
  // Index of the filter whose hook is running, or SIZE_MAX; and whether any is.
  size_t currentFilter() const { return cur_filter_; }
  bool inHook() const { return in_hook_ > 0; }

private:
  using HookFn = sluice_status_t (*)(void*, sluice_stream_t*, bool);
  struct DirectionState {
    Pause pause = Pause::None;
    size_t pause_at = 0;            // the filter that paused
    size_t skip_body = SIZE_MAX;    // got the whole body already (from its headers hook)
    bool headers_done = false;      // headers hooks finished
    bool held = false;              // response only: see responseHeld()
  };

  // Runs one hook of filter i with the bookkeeping every hook needs; an invalid status (with
  // check_status) ends the stream with 500.
  sluice_status_t runHook(size_t i, HookFn hook, bool end_stream, bool check_status);
  template <typename Call> sluice_status_t guardHook(size_t i, Call&& call, bool check_status);
  void pause(sluice_direction_t dir, sluice_status_t st, size_t at);
  size_t end(sluice_direction_t dir) const {
    return dir == SLUICE_DIRECTION_REQUEST ? filters_.size() : SIZE_MAX;
  }

  Stream& stream_;
  std::vector<ActiveFilter> filters_;
  DirectionState dir_[2];
  size_t resp_top_ = 0; // response hooks run on filters [0, resp_top_)
  size_t cur_filter_ = SIZE_MAX;
  int in_hook_ = 0;
};

} // namespace sluice::filter
