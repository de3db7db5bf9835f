#include "filters/ratelimit/redis_client.h"

#include "filters/common/host_check.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

namespace sluice::filters::ratelimit {

namespace {

// The token bucket, run atomically by Redis. Tokens are counted in 1/60000 units, refilled at
// requests_per_minute units per millisecond of Redis's own clock (TIME), so every sluice process
// shares one clock and the arithmetic is exact. A bucket's key expires once it would be full
// again (a full bucket is the same as none), so idle keys cost Redis nothing.
//   KEYS[1] bucket; ARGV[1] burst; ARGV[2] requests_per_minute
//   returns {allowed 0|1, whole tokens left, ms until full, ms until the next token if denied}
const char kScript[] = R"lua(local cap = tonumber(ARGV[1]) * 60000
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'u', 'ts')
local units = tonumber(s[1])
local ts = tonumber(s[2])
if units == nil or ts == nil then
  units = cap
  ts = now
elseif now > ts then
  units = math.min(cap, units + (now - ts) * rate)
  ts = now
end
local allowed = 0
local retry = 0
if units >= 60000 then
  units = units - 60000
  allowed = 1
  redis.call('HSET', KEYS[1], 'u', string.format('%d', units), 'ts', string.format('%d', ts))
  redis.call('PEXPIRE', KEYS[1], math.ceil((cap - units) / rate) + 1000)
else
  retry = math.ceil((60000 - units) / rate)
end
return {allowed, math.floor(units / 60000), math.ceil((cap - units) / rate), retry}
)lua";

std::string computeSha1() {
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const uint8_t*>(kScript), sizeof(kScript) - 1, digest);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

sluice_str_t st(std::string_view v) {
  return sluice_str_t{v.data(), v.size()};
}

} // namespace

const char* RedisScript::text() {
  return kScript;
}

const std::string& RedisScript::sha1() {
  static const std::string sha = computeSha1();
  return sha;
}

struct RedisClient::Check {
  RedisClient* client = nullptr;
  RedisDone done = nullptr; // null once finished or detached
  void* user_data = nullptr;
  uint64_t deadline_ms = 0;
  std::chrono::steady_clock::time_point sent;
  std::string key;
  Limit limit;
  bool in_hiredis = false; // hiredis holds a callback for it
  bool in_queue = false;   // in deadlines_
  bool evaled = false;     // sent again as EVAL after NOSCRIPT
};

RedisClient::RedisClient(const sluice_host_t* host, sluice_worker_t* worker,
                         const RedisSettings& settings, const RedisMetrics& metrics,
                         std::string log_name)
    : host_(host), worker_(worker), settings_(settings), metrics_(metrics),
      log_name_(std::move(log_name)) {
  RedisScript::sha1(); // computed once, off the data path
  if (common::hostHasReadiness(*host_)) {
    const std::string what =
        log_name_ + ": first connection to Redis " +
        (settings_.cluster.empty() ? settings_.host + ":" + std::to_string(settings_.port)
                                   : "(cluster \"" + settings_.cluster + "\")");
    ready_hold_ = host_->sluice_host_ready_hold(worker_, {what.data(), what.size()});
  }
  connect();
}

void RedisClient::firstAttemptEnded() {
  // Connected or not: Redis being down must not keep the process unready (failure_mode
  // decides what requests get meanwhile).
  if (ready_hold_ != 0) {
    host_->sluice_host_ready_release(ready_hold_);
    ready_hold_ = 0;
  }
}

RedisClient::~RedisClient() {
  firstAttemptEnded();
  closing_ = true;
  dropConnection();
  if (timer_ != 0) {
    host_->sluice_host_timer_cancel(worker_, timer_);
    timer_ = 0;
  }
  for (Check* c : deadlines_) {
    c->in_queue = false;
    if (!c->in_hiredis) {
      delete c;
    }
  }
  deadlines_.clear();
  for (Check* c : free_) {
    delete c;
  }
}

void RedisClient::destroy(std::unique_ptr<RedisClient> client) {
  if (client != nullptr && client->dispatching_ > 0) {
    client->orphaned_ = true;
    client.release(); // deleted by the callback that is running, when it unwinds
  }
}

void RedisClient::log(sluice_log_level_t level, const std::string& message) {
  const std::string line = log_name_ + ": " + message;
  host_->sluice_host_log(nullptr, nullptr, level, st(line));
}

void RedisClient::countError(sluice_metric_id_t id) {
  host_->sluice_host_metric_add(id, 1);
}

// --- hiredis adapter ------------------------------------------------------------------------

void RedisClient::setEvents(uint32_t events) {
  if (events != io_events_ && io_ != 0) {
    io_events_ = events;
    host_->sluice_host_io_update(worker_, io_, events);
  }
}

void RedisClient::evAddRead(void* p) {
  auto* self = static_cast<RedisClient*>(p);
  self->setEvents(self->io_events_ | SLUICE_IO_READABLE);
}
void RedisClient::evDelRead(void* p) {
  auto* self = static_cast<RedisClient*>(p);
  self->setEvents(self->io_events_ & ~SLUICE_IO_READABLE);
}
void RedisClient::evAddWrite(void* p) {
  auto* self = static_cast<RedisClient*>(p);
  self->setEvents(self->io_events_ | SLUICE_IO_WRITABLE);
}
void RedisClient::evDelWrite(void* p) {
  auto* self = static_cast<RedisClient*>(p);
  self->setEvents(self->io_events_ & ~SLUICE_IO_WRITABLE);
}

// hiredis is freeing the context (after running every pending callback with no reply). The fd
// is still open here; it is closed right after, so the watch goes first.
void RedisClient::evCleanup(void* p) {
  auto* self = static_cast<RedisClient*>(p);
  if (self->io_ != 0) {
    self->host_->sluice_host_io_close(self->worker_, self->io_);
    self->io_ = 0;
  }
  self->io_events_ = 0;
  self->ac_ = nullptr;
  if (self->state_ == State::Connected || self->state_ == State::Connecting) {
    self->scheduleReconnect(); // lost, not dropped on purpose
  }
}

void RedisClient::onIo(void* p, uint32_t events) {
  auto* self = static_cast<RedisClient*>(p);
  self->dispatching_++;
  // Either call may free the context (a closed or failed connection): check in between.
  if (self->ac_ != nullptr && (events & SLUICE_IO_READABLE) != 0) {
    redisAsyncHandleRead(self->ac_);
  }
  if (self->ac_ != nullptr && (events & SLUICE_IO_WRITABLE) != 0) {
    redisAsyncHandleWrite(self->ac_);
  }
  if (--self->dispatching_ == 0 && self->orphaned_) {
    delete self;
    return;
  }
  self->armTimer();
}

// --- connection -----------------------------------------------------------------------------

void RedisClient::connect() {
  state_ = State::Connecting;
  std::string host = settings_.host;
  uint16_t port = settings_.port;
  if (!settings_.cluster.empty()) {
    // Every (re)connect picks again: the cluster manager follows DNS changes and drains.
    char buf[64];
    size_t n = host_->sluice_host_cluster_pick(
        worker_, {settings_.cluster.data(), settings_.cluster.size()}, buf, sizeof(buf));
    if (n == 0 || !parseRedisAddress(std::string(buf, n), host, port)) {
      if (backoff_ms_ == kMinBackoffMs) {
        log(SLUICE_LOG_WARN,
            "cluster \"" + settings_.cluster + "\" has no available Redis endpoint");
      }
      countError(metrics_.errors_connection);
      scheduleReconnect();
      return;
    }
  }
  target_ =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  ac_ = redisAsyncConnect(host.c_str(), port);
  if (ac_ == nullptr || ac_->err != 0) {
    if (ac_ != nullptr) {
      if (backoff_ms_ == kMinBackoffMs) {
        log(SLUICE_LOG_WARN, std::string("cannot connect to Redis: ") + ac_->errstr);
      }
      redisAsyncFree(ac_); // no event hooks yet: nothing else runs
      ac_ = nullptr;
    }
    countError(metrics_.errors_connection);
    scheduleReconnect();
    return;
  }
  ac_->data = this;
  ac_->ev.data = this;
  ac_->ev.addRead = &RedisClient::evAddRead;
  ac_->ev.delRead = &RedisClient::evDelRead;
  ac_->ev.addWrite = &RedisClient::evAddWrite;
  ac_->ev.delWrite = &RedisClient::evDelWrite;
  ac_->ev.cleanup = &RedisClient::evCleanup;
  io_events_ = 0;
  io_ = host_->sluice_host_io_watch(worker_, ac_->c.fd, 0, &RedisClient::onIo, this);
  if (io_ == 0) {
    log(SLUICE_LOG_WARN, "cannot watch the Redis connection");
    countError(metrics_.errors_connection);
    dropConnection();
    scheduleReconnect();
    return;
  }
  redisAsyncSetConnectCallback(ac_, &RedisClient::onConnect);
  redisAsyncSetDisconnectCallback(ac_, &RedisClient::onDisconnect);
  // The connect completes (or fails) when the socket turns writable.
  evAddWrite(this);
  connect_deadline_ms_ = host_->sluice_host_worker_now_ms(worker_) +
                         std::max<uint64_t>(kConnectTimeoutMs, settings_.timeout_ms);
  armTimer();
}

void RedisClient::onConnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (status == REDIS_OK) {
    if (self->backoff_ms_ > kMinBackoffMs) {
      self->log(SLUICE_LOG_INFO, "connected to Redis again");
    }
    self->state_ = State::Connected;
    self->firstAttemptEnded();
    self->backoff_ms_ = kMinBackoffMs;
    self->last_reply_ms_ = self->host_->sluice_host_worker_now_ms(self->worker_);
    return;
  }
  // hiredis frees the context next (evCleanup schedules the retry).
  if (self->backoff_ms_ == kMinBackoffMs) {
    self->log(SLUICE_LOG_WARN, std::string("cannot connect to Redis ") + self->target_ + ": " +
                                   (ac->errstr != nullptr ? ac->errstr : "?"));
  }
  self->countError(self->metrics_.errors_connection);
}

void RedisClient::onDisconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (status != REDIS_OK && !self->closing_) {
    self->log(SLUICE_LOG_WARN,
              std::string("Redis connection lost: ") + (ac->errstr != nullptr ? ac->errstr : "?"));
    self->countError(self->metrics_.errors_connection);
  }
}

void RedisClient::scheduleReconnect() {
  firstAttemptEnded();
  if (closing_) {
    return;
  }
  state_ = State::Backoff;
  reconnect_at_ms_ = host_->sluice_host_worker_now_ms(worker_) + backoff_ms_;
  backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
  armTimer();
}

void RedisClient::dropConnection() {
  if (ac_ == nullptr) {
    return;
  }
  state_ = State::Backoff; // so evCleanup does not count this as a loss
  redisAsyncContext* ac = ac_;
  redisAsyncFree(ac); // runs every pending callback with no reply, then evCleanup
  ac_ = nullptr;
}

// --- checks ---------------------------------------------------------------------------------

bool RedisClient::send(Check* c, bool eval) {
  char burst[16];
  char rate[16];
  auto b = std::to_chars(burst, burst + sizeof(burst), c->limit.burst);
  auto r = std::to_chars(rate, rate + sizeof(rate), c->limit.requests_per_minute);
  const std::string& sha = RedisScript::sha1();
  const char* argv[6];
  size_t lens[6];
  if (eval) {
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = kScript;
    lens[1] = sizeof(kScript) - 1;
  } else {
    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = sha.data();
    lens[1] = sha.size();
  }
  argv[2] = "1";
  lens[2] = 1;
  argv[3] = c->key.data();
  lens[3] = c->key.size();
  argv[4] = burst;
  lens[4] = static_cast<size_t>(b.ptr - burst);
  argv[5] = rate;
  lens[5] = static_cast<size_t>(r.ptr - rate);
  if (redisAsyncCommandArgv(ac_, &RedisClient::onReply, c, 6, argv, lens) != REDIS_OK) {
    return false;
  }
  c->in_hiredis = true;
  c->evaled = eval;
  in_flight_++;
  return true;
}

RedisClient::Check* RedisClient::check(std::string_view key, const Limit& limit, RedisDone done,
                                       void* user_data) {
  if (ac_ == nullptr || (state_ != State::Connected && state_ != State::Connecting)) {
    countError(metrics_.errors_connection);
    return nullptr;
  }
  if (in_flight_ >= kMaxInFlight) {
    countError(metrics_.errors_overload);
    return nullptr;
  }
  Check* c;
  if (!free_.empty()) {
    c = free_.back();
    free_.pop_back();
  } else {
    c = new Check;
  }
  c->client = this;
  c->key.assign(key.data(), key.size());
  c->limit = limit;
  const uint64_t now = host_->sluice_host_worker_now_ms(worker_);
  if (in_flight_ == 0) {
    last_reply_ms_ = now; // a stall is measured from the first unanswered check
  }
  if (!send(c, false)) {
    free_.push_back(c);
    countError(metrics_.errors_connection);
    return nullptr;
  }
  c->done = done;
  c->user_data = user_data;
  c->sent = std::chrono::steady_clock::now();
  c->deadline_ms = now + settings_.timeout_ms;
  c->in_queue = true;
  deadlines_.push_back(c);
  armTimer();
  return c;
}

void RedisClient::detach(Check* c) {
  c->done = nullptr;
  c->user_data = nullptr;
}

void RedisClient::finish(Check* c, const RedisOutcome& outcome) {
  RedisDone done = c->done;
  void* ud = c->user_data;
  c->done = nullptr;
  c->user_data = nullptr;
  if (done != nullptr) {
    done(ud, outcome);
  }
}

void RedisClient::release(Check* c) {
  if (free_.size() < 1024) {
    c->key.clear();
    free_.push_back(c);
  } else {
    delete c;
  }
}

void RedisClient::onReply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* c = static_cast<Check*>(privdata);
  RedisClient* self = c->client;
  c->in_hiredis = false;
  self->in_flight_--;
  auto* reply = static_cast<redisReply*>(r);
  RedisOutcome outcome;
  if (reply == nullptr) {
    // The connection went away (or is being freed) before an answer.
    if (c->done != nullptr) {
      self->countError(self->metrics_.errors_connection);
    }
  } else {
    self->last_reply_ms_ = self->host_->sluice_host_worker_now_ms(self->worker_);
    if (reply->type == REDIS_REPLY_ERROR && !c->evaled && c->done != nullptr &&
        std::strncmp(reply->str, "NOSCRIPT", 8) == 0 && (ac->c.flags & REDIS_FREEING) == 0 &&
        self->send(c, true)) {
      return; // the same check again, with the script text (Redis caches it for the next ones)
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
        std::all_of(reply->element, reply->element + 4,
                    [](const redisReply* e) { return e->type == REDIS_REPLY_INTEGER; })) {
      outcome.ok = true;
      outcome.decision.allowed = reply->element[0]->integer == 1;
      outcome.decision.remaining =
          static_cast<uint32_t>(std::max<long long>(0, reply->element[1]->integer));
      outcome.decision.reset_ms =
          static_cast<uint64_t>(std::max<long long>(0, reply->element[2]->integer));
      outcome.decision.retry_ms =
          static_cast<uint64_t>(std::max<long long>(0, reply->element[3]->integer));
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - c->sent).count();
      self->host_->sluice_host_metric_observe(self->metrics_.latency, seconds);
    } else if (c->done != nullptr) {
      if (reply->type == REDIS_REPLY_ERROR && self->backoff_ms_ == kMinBackoffMs) {
        self->log(SLUICE_LOG_WARN, std::string("Redis error: ") + reply->str);
      }
      self->countError(self->metrics_.errors_reply);
    }
  }
  self->finish(c, outcome);
  if (!c->in_queue) {
    self->release(c);
  }
  // Answered checks at the head need no deadline any more.
  while (!self->deadlines_.empty() && self->deadlines_.front()->done == nullptr &&
         !self->deadlines_.front()->in_hiredis) {
    Check* head = self->deadlines_.front();
    self->deadlines_.pop_front();
    head->in_queue = false;
    self->release(head);
  }
}

// --- the one timer: check deadlines, connect timeout, reconnect, stall ------------------------

uint64_t RedisClient::stallMs() const {
  return std::max<uint64_t>(1000, 4ull * settings_.timeout_ms);
}

void RedisClient::armTimer() {
  if (closing_ || orphaned_) {
    return;
  }
  uint64_t due = UINT64_MAX;
  if (!deadlines_.empty()) {
    due = deadlines_.front()->deadline_ms;
  }
  if (state_ == State::Connecting) {
    due = std::min(due, connect_deadline_ms_);
  } else if (state_ == State::Backoff) {
    due = std::min(due, reconnect_at_ms_);
  } else if (state_ == State::Connected && in_flight_ > 0) {
    due = std::min(due, last_reply_ms_ + stallMs());
  }
  if (due == UINT64_MAX) {
    return; // the armed timer (if any) finds nothing to do and is not re-armed
  }
  if (timer_ != 0 && timer_due_ms_ <= due) {
    return;
  }
  if (timer_ != 0) {
    host_->sluice_host_timer_cancel(worker_, timer_);
  }
  const uint64_t now = host_->sluice_host_worker_now_ms(worker_);
  timer_due_ms_ = due;
  timer_ = host_->sluice_host_timer_start(
      worker_, nullptr, due > now ? due - now : 0,
      [](void* p) { static_cast<RedisClient*>(p)->onTimer(); }, this);
}

void RedisClient::onTimer() {
  timer_ = 0;
  dispatching_++;
  const uint64_t now = host_->sluice_host_worker_now_ms(worker_);
  if (state_ == State::Connecting && now >= connect_deadline_ms_) {
    if (backoff_ms_ == kMinBackoffMs) {
      log(SLUICE_LOG_WARN, "Redis connect timed out");
    }
    countError(metrics_.errors_connection);
    dropConnection();
    scheduleReconnect();
  } else if (state_ == State::Connected && in_flight_ > 0 && now >= last_reply_ms_ + stallMs()) {
    log(SLUICE_LOG_WARN, "Redis stopped answering; reconnecting");
    countError(metrics_.errors_connection);
    dropConnection();
    scheduleReconnect();
  } else if (state_ == State::Backoff && ac_ == nullptr && now >= reconnect_at_ms_) {
    connect();
  }
  while (!deadlines_.empty() && deadlines_.front()->deadline_ms <= now) {
    Check* c = deadlines_.front();
    deadlines_.pop_front();
    c->in_queue = false;
    if (c->done != nullptr) {
      countError(metrics_.errors_timeout);
      finish(c, RedisOutcome{});
    }
    if (!c->in_hiredis) {
      release(c);
    }
  }
  if (--dispatching_ == 0 && orphaned_) {
    delete this;
    return;
  }
  armTimer();
}

} // namespace sluice::filters::ratelimit
