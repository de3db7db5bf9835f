#pragma once

// The Redis backend's per-worker client: one hiredis async connection per worker, driven by the
// host's file-descriptor watches and timers (a small hiredis adapter over sluice_host_io_*).
// Commands are pipelined: every check made during one loop turn is written in one go when the
// socket is writable. Each check runs one atomic Lua script (EVALSHA, EVAL when Redis answers
// NOSCRIPT) implementing the token bucket with Redis's own clock. Nothing here blocks: connects
// are non-blocking to a numeric address, a check that has no answer within timeout_ms is
// answered by failure_mode, a dead or stalled connection is dropped and re-made with backoff.
// Single-threaded (the worker's).

#include "filters/ratelimit/config.h"
#include "filters/ratelimit/local_store.h"
#include "sluice/filter.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;

namespace sluice::filters::ratelimit {

// The outcome of one check: `ok` false means Redis did not answer usably (failure_mode applies).
struct RedisOutcome {
  bool ok = false;
  Decision decision;
};

// Where a check's outcome goes. Called at most once, on the worker, outside any hook.
using RedisDone = void (*)(void* user_data, const RedisOutcome& outcome);

struct RedisMetrics {
  sluice_metric_id_t errors_connection = SLUICE_METRIC_INVALID;
  sluice_metric_id_t errors_timeout = SLUICE_METRIC_INVALID;
  sluice_metric_id_t errors_reply = SLUICE_METRIC_INVALID;
  sluice_metric_id_t errors_overload = SLUICE_METRIC_INVALID;
  sluice_metric_id_t latency = SLUICE_METRIC_INVALID; // histogram, seconds
};

// The Lua token bucket and its SHA-1 (hex), shared by every client.
struct RedisScript {
  static const char* text();
  static const std::string& sha1();
};

class RedisClient {
public:
  static constexpr size_t kMaxInFlight = 10000;
  static constexpr uint64_t kMinBackoffMs = 50;
  static constexpr uint64_t kMaxBackoffMs = 2000;
  static constexpr uint64_t kConnectTimeoutMs = 1000;

  struct Check; // one check in flight (opaque to callers)

  RedisClient(const sluice_host_t* host, sluice_worker_t* worker, const RedisSettings& settings,
              const RedisMetrics& metrics, std::string log_name);
  // Frees the connection (its pending callbacks run and find nothing attached) and every
  // watch and timer, as sluice_on_worker_destroy requires.
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Starts a check of `key` (the full Redis key). Returns null when it cannot be sent now (no
  // connection, too many in flight): the caller applies failure_mode itself. Otherwise `done`
  // runs later exactly once, unless detach() is called first.
  Check* check(std::string_view key, const Limit& limit, RedisDone done, void* user_data);
  // The waiter went away (stream destroyed): its outcome is dropped.
  static void detach(Check* c);

  // Destroys a client, or, when called from inside one of its own callbacks (a resumed stream
  // that was the last of a reloaded config destroys the worker state), marks it to delete
  // itself once the callback unwinds. Its checks are all detached by then.
  static void destroy(std::unique_ptr<RedisClient> client);

  bool connected() const { return state_ == State::Connected; }
  size_t inFlight() const { return in_flight_; }

private:
  enum class State { Idle, Connecting, Connected, Backoff };

  // hiredis adapter (redisAsyncContext::ev) over the host's fd watches.
  static void evAddRead(void* p);
  static void evDelRead(void* p);
  static void evAddWrite(void* p);
  static void evDelWrite(void* p);
  static void evCleanup(void* p);
  static void onIo(void* p, uint32_t events);
  void setEvents(uint32_t events);

  static void onConnect(const redisAsyncContext* ac, int status);
  static void onDisconnect(const redisAsyncContext* ac, int status);
  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);

  void connect();
  void scheduleReconnect();
  void firstAttemptEnded(); // releases the readiness hold of the first connect
  void dropConnection();    // frees the context; pending checks get failure outcomes
  bool send(Check* c, bool eval);
  void finish(Check* c, const RedisOutcome& outcome);
  void release(Check* c);
  void armTimer();
  void onTimer();
  void countError(sluice_metric_id_t id);
  void log(sluice_log_level_t level, const std::string& message);
  uint64_t stallMs() const;

  const sluice_host_t* host_;
  sluice_worker_t* worker_;
  const RedisSettings settings_; // a copy: the config may go away before an orphan does
  const RedisMetrics metrics_;
  const std::string log_name_;

  State state_ = State::Idle;
  bool closing_ = false;
  int dispatching_ = 0;   // inside onIo / onTimer
  bool orphaned_ = false; // destroy() was called while dispatching
  redisAsyncContext* ac_ = nullptr;
  sluice_io_id_t io_ = 0;
  uint32_t io_events_ = 0;
  uint64_t backoff_ms_ = kMinBackoffMs;
  uint64_t connect_deadline_ms_ = 0;
  uint64_t reconnect_at_ms_ = 0;
  uint64_t last_reply_ms_ = 0;
  sluice_timer_id_t timer_ = 0;
  uint64_t timer_due_ms_ = 0;
  std::string target_;               // "ip:port" of the current or last connection (messages)
  sluice_ready_id_t ready_hold_ = 0; // /ready waits for the first connect attempt (ABI 1.2)

  std::deque<Check*> deadlines_; // in send order, so deadlines ascend
  std::vector<Check*> free_;
  size_t in_flight_ = 0; // checks hiredis holds a callback for
};

} // namespace sluice::filters::ratelimit
