#include "core/common/logger.h"

#include "core/common/thread_name.h"

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

#include <sys/time.h>
#include <unistd.h>

namespace sluice {

std::atomic<LogLevel> Logger::level_{LogLevel::Info};

bool Logger::parseLevel(std::string_view text, LogLevel& out) {
  static constexpr std::pair<std::string_view, LogLevel> kLevels[] = {
      {"trace", LogLevel::Trace}, {"debug", LogLevel::Debug},  {"info", LogLevel::Info},
      {"warn", LogLevel::Warn},   {"warning", LogLevel::Warn}, {"error", LogLevel::Error},
      {"off", LogLevel::Off}};
  for (const auto& [name, l] : kLevels) {
    if (name == text) {
      out = l;
      return true;
    }
  }
  return false;
}

namespace {

void writeAll(const char* p, size_t n) {
  while (n > 0) {
    ssize_t rc = ::write(STDERR_FILENO, p, n);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      return; // stderr is gone: nothing else to tell
    }
    p += rc;
    n -= static_cast<size_t>(rc);
  }
}

// The queue between the threads that log and the writer thread. Two strings swap roles: the
// writer takes the filled one and hands back its empty one, so capacities are kept and steady
// state allocates nothing.
struct Writer {
  std::mutex mu;
  std::condition_variable cv;
  std::string queue;
  std::thread thread;
  bool running = false;
  bool stopping = false;
  uint64_t dropped = 0;
  uint64_t dropped_reported = 0;
  std::atomic<bool> writing{false}; // the writer holds a batch outside the lock

  void loop() {
    std::string out;
    out.reserve(Logger::kQueueBytes);
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stopping || !queue.empty(); });
      if (queue.empty() && stopping) {
        return;
      }
      out.swap(queue);
      writing.store(true, std::memory_order_release);
      uint64_t lost = dropped - dropped_reported;
      dropped_reported = dropped;
      lock.unlock();
      if (lost > 0) {
        char note[96];
        int n = std::snprintf(note, sizeof(note),
                              "(%llu log lines dropped: stderr was not keeping up)\n",
                              static_cast<unsigned long long>(lost));
        writeAll(note, static_cast<size_t>(n));
      }
      writeAll(out.data(), out.size());
      writing.store(false, std::memory_order_release);
      out.clear();
      lock.lock();
    }
  }
};

Writer& writer() {
  static Writer* w = new Writer(); // never destroyed: threads may log during static teardown
  return *w;
}

void emit(std::string_view line) {
  Writer& w = writer();
  {
    std::lock_guard<std::mutex> lock(w.mu);
    if (w.running) {
      if (w.queue.size() + line.size() > Logger::kQueueBytes) {
        w.dropped++;
        return;
      }
      bool was_empty = w.queue.empty();
      w.queue.append(line);
      if (was_empty) {
        w.cv.notify_one();
      }
      return;
    }
  }
  writeAll(line.data(), line.size());
}

void appendPrefix(fmt::memory_buffer& b, LogLevel level) {
  static constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error", "off"};
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[32];
  size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  fmt::format_to(fmt::appender(b), "{}.{:03d}Z {} [", std::string_view(ts, n),
                 static_cast<int>(tv.tv_usec / 1000), kNames[static_cast<int>(level)]);
}

void append(fmt::memory_buffer& b, std::string_view s) {
  b.append(s.data(), s.data() + s.size());
}

} // namespace

void Logger::write(LogLevel level, std::string_view component, std::string_view message) {
  write(level, component, {}, {}, message);
}

void Logger::write(LogLevel level, std::string_view component, std::string_view name,
                   std::string_view request_id, std::string_view message) {
  thread_local fmt::memory_buffer line;
  line.clear();
  appendPrefix(line, level);
  append(line, component);
  if (!name.empty()) {
    append(line, " ");
    append(line, name);
  }
  append(line, "] ");
  if (!request_id.empty()) {
    append(line, "[");
    append(line, request_id);
    append(line, "] ");
  }
  append(line, message);
  append(line, "\n");
  emit(std::string_view(line.data(), line.size()));
}

void Logger::startWriter() {
  Writer& w = writer();
  std::lock_guard<std::mutex> lock(w.mu);
  if (w.running) {
    return;
  }
  w.queue.reserve(kQueueBytes);
  w.stopping = false;
  w.running = true;
  w.thread = std::thread([&w] {
    setThreadName("sluice-log");
    w.loop();
  });
}

void Logger::stopWriter() {
  Writer& w = writer();
  {
    std::lock_guard<std::mutex> lock(w.mu);
    if (!w.running) {
      return;
    }
    w.running = false; // later lines are written directly; the writer drains what is queued
    w.stopping = true;
    w.cv.notify_one();
  }
  w.thread.join();
}

void Logger::writeQueuedForCrash() {
  Writer& w = writer();
  // Take the queue's lock (bounded tries with nanosleep, async-signal-safe; never released:
  // the process is dying), then let a batch the writer took before finish (`writing` changes
  // only under the lock to true, so holding it, no new batch can start), then write the rest.
  timespec tick{0, 1000 * 1000};
  bool locked = false;
  for (int i = 0; i < 100 && !(locked = w.mu.try_lock()); i++) {
    nanosleep(&tick, nullptr);
  }
  if (!locked) {
    return;
  }
  for (int i = 0; i < 200 && w.writing.load(std::memory_order_acquire); i++) {
    nanosleep(&tick, nullptr);
  }
  writeAll(w.queue.data(), w.queue.size());
}

uint64_t Logger::dropped() {
  Writer& w = writer();
  std::lock_guard<std::mutex> lock(w.mu);
  return w.dropped;
}

} // namespace sluice
