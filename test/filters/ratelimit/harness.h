#pragma once

// Drives the ratelimit filter through its C ABI on the fake host, recording local replies (with
// their headers) and resumes. For the Redis backend, pump() runs the fake worker's fd watches
// (real poll(2)) and timers with now_ms following the real clock; RedisServer starts a real
// redis-server on a free loopback port.

#include "filters/ratelimit/ratelimit_filter.h"
#include "sluice/filter.h"
#include "test/filters/common/fake_host.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sluice::testing {

struct Recorded {
  std::vector<std::pair<FakeStream*, HeaderList>> replies; // local reply headers per stream
  std::vector<FakeStream*> resumed;
  std::function<void(FakeStream*)> on_resume; // runs inside the filter's resume call
};

inline Recorded*& recorded() {
  static Recorded* r = nullptr;
  return r;
}
inline void (*&origReply())(sluice_stream_t*, uint32_t, const sluice_header_t*, size_t,
                            sluice_str_t, sluice_str_t) {
  static void (*f)(sluice_stream_t*, uint32_t, const sluice_header_t*, size_t, sluice_str_t,
                   sluice_str_t) = nullptr;
  return f;
}

inline std::string headerOf(const HeaderList& h, std::string_view name) {
  for (const auto& [n, v] : h) {
    if (FakeStream::iequals(n, name)) {
      return v;
    }
  }
  return "";
}

class RatelimitHarness {
public:
  RatelimitHarness() {
    table_ = *host.table();
    origReply() = table_.sluice_host_send_local_reply;
    table_.sluice_host_send_local_reply = [](sluice_stream_t* s, uint32_t status,
                                             const sluice_header_t* h, size_t n, sluice_str_t body,
                                             sluice_str_t details) {
      HeaderList list;
      for (size_t i = 0; i < n; i++) {
        list.emplace_back(std::string(h[i].name.ptr, h[i].name.len),
                          std::string(h[i].value.ptr, h[i].value.len));
      }
      recorded()->replies.emplace_back(FakeStream::from(s), std::move(list));
      origReply()(s, status, h, n, body, details);
    };
    table_.sluice_host_resume = [](sluice_stream_t* s, sluice_direction_t) {
      recorded()->resumed.push_back(FakeStream::from(s));
      if (recorded()->on_resume) {
        recorded()->on_resume(FakeStream::from(s));
      }
    };
    recorded() = &rec;
    const sluice_module_t* m =
        sluice_builtin_ratelimit_init(&table_, SLUICE_ABI_VERSION_MAJOR, SLUICE_ABI_VERSION_MINOR);
    if (m != nullptr) {
      desc = m->filters[0];
    }
    ctx.name = "rl";
  }
  ~RatelimitHarness() { unload(); }

  bool load(const std::string& json, size_t workers = 1) {
    unload();
    ctx.errors.clear();
    config = desc->sluice_on_config_new(&table_, ctx.handle(), {json.data(), json.size()});
    if (config == nullptr) {
      return false;
    }
    for (size_t i = 0; i < workers; i++) {
      workers_.push_back(std::make_unique<FakeWorker>());
      workers_.back()->index = static_cast<uint32_t>(i);
      workers_.back()->now_ms = now_ms;
      states_.push_back(desc->sluice_on_worker_new(config, workers_.back()->handle()));
    }
    return true;
  }
  void unload() {
    for (auto* f : open_) {
      desc->sluice_on_stream_destroy(f);
    }
    open_.clear();
    if (config != nullptr) {
      for (size_t i = 0; i < states_.size(); i++) {
        destroyWorkerState(i);
      }
      for (auto& w : workers_) {
        CHECK(w->ios.empty()); // every fd watch closed before worker destroy returned
      }
      desc->sluice_on_config_destroy(config);
      config = nullptr;
    }
    states_.clear();
    workers_.clear();
  }

  FakeWorker& worker(size_t i = 0) { return *workers_[i]; }
  void destroyWorkerState(size_t i) {
    if (states_[i] != nullptr) {
      desc->sluice_on_worker_destroy(config, states_[i]);
      states_[i] = nullptr;
    }
  }
  void setNow(uint64_t ms) {
    now_ms = ms;
    for (auto& w : workers_) {
      w->now_ms = ms;
    }
  }

  // The request hook; the stream object stays open until finish().
  sluice_status_t start(FakeStream& s, size_t worker = 0) {
    s.worker = workers_[worker].get();
    // A new stream may reuse an old one's address: forget what was recorded for it.
    rec.resumed.erase(std::remove(rec.resumed.begin(), rec.resumed.end(), &s), rec.resumed.end());
    rec.replies.erase(std::remove_if(rec.replies.begin(), rec.replies.end(),
                                     [&](const auto& r) { return r.first == &s; }),
                      rec.replies.end());
    void* f = desc->sluice_on_stream_new(config, states_[worker], s.handle());
    REQUIRE(f != nullptr);
    filters_[&s] = f;
    open_.push_back(f);
    return desc->sluice_on_request_headers(f, s.handle(), true);
  }
  // Runs the response hook on a 200 (unless the stream was answered locally) and destroys the
  // stream object.
  void finish(FakeStream& s) {
    void* f = filters_[&s];
    if (s.local_replies.empty()) {
      s.response_headers.emplace_back(":status", "200");
      desc->sluice_on_response_headers(f, s.handle(), false);
    }
    desc->sluice_on_stream_destroy(f);
    open_.erase(std::find(open_.begin(), open_.end(), f));
    filters_.erase(&s);
  }
  // A whole local-backend request: hook, response, destroy. Returns the status the client sees.
  uint32_t run(FakeStream& s, size_t worker = 0) {
    sluice_status_t r = start(s, worker);
    finish(s);
    if (!s.local_replies.empty()) {
      return s.local_replies.back();
    }
    return r == SLUICE_STATUS_CONTINUE ? 200 : 0;
  }

  // Runs fd callbacks and due timers, with now_ms following the real clock, until done() or
  // the limit passes.
  bool pump(const std::function<bool()>& done, int limit_ms = 5000) {
    const auto start = std::chrono::steady_clock::now();
    const uint64_t base = now_ms;
    while (!done()) {
      const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count();
      if (elapsed > limit_ms) {
        return false;
      }
      setNow(base + static_cast<uint64_t>(elapsed));
      for (auto& w : workers_) {
        w->pollIo(1);
        w->fireDueTimers();
      }
    }
    return true;
  }

  const HeaderList* replyHeaders(FakeStream& s) const {
    for (const auto& [st, h] : rec.replies) {
      if (st == &s) {
        return &h;
      }
    }
    return nullptr;
  }
  bool resumed(FakeStream& s) const {
    return std::find(rec.resumed.begin(), rec.resumed.end(), &s) != rec.resumed.end();
  }

  FakeHost host;
  FakeConfigCtx ctx;
  Recorded rec;
  const sluice_filter_descriptor_t* desc = nullptr;
  void* config = nullptr;
  uint64_t now_ms = 1000000;

private:
  sluice_host_t table_{};
  std::vector<std::unique_ptr<FakeWorker>> workers_;
  std::vector<void*> states_;
  std::map<FakeStream*, void*> filters_;
  std::vector<void*> open_;
};

inline FakeStream request(const std::string& path, HeaderList extra = {},
                          const std::string& ip = "10.0.0.1") {
  FakeStream s;
  s.request_headers = {{":method", "GET"}, {":path", path}, {":authority", "api.example.com"}};
  for (auto& h : extra) {
    s.request_headers.push_back(h);
  }
  s.client_ip = ip;
  s.client_address = ip + ":40000";
  return s;
}

inline int freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A redis-server child on 127.0.0.1:port, no persistence. Stopped (SIGKILL) on destruction.
class RedisServer {
public:
  RedisServer() : port_(freeLoopbackPort()) { start(); }
  ~RedisServer() { stop(); }
  int port() const { return port_; }
  bool ready() const { return ready_; }

  void start() {
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      int null_fd = ::open("/dev/null", O_WRONLY);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--loglevel", "warning", nullptr);
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port_));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      ::close(fd);
      if (ok) {
        ready_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    ready_ = false;
  }

private:
  int port_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

} // namespace sluice::testing
