#pragma once

// Process-wide logger: one line per message to stderr, "time level [component] message".
// Thread-safe. Lines are formatted into a per-thread buffer (no allocation once warm). Before
// startWriter() (the CLI's one-shot commands, `sluice validate`) each line is one write(2);
// while the writer runs (`sluice run`), a line is copied into a bounded in-memory queue and a
// writer thread does the write(2), so a slow or full stderr (a pipe nobody drains, a stalled
// journald) never blocks a worker. The queue's lock is held only for the copy, never across
// I/O; when the queue is full the line is dropped and counted, and the writer reports the
// count ("N log lines dropped") with the next line it writes.

#include <atomic>
#include <cstdint>
#include <string_view>

#include <fmt/format.h>

namespace sluice {

enum class LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Off = 5 };

class Logger {
public:
  // Bytes the queue holds at most while the writer thread runs.
  static constexpr size_t kQueueBytes = 1 << 20;

  static void setLevel(LogLevel level) { level_.store(level, std::memory_order_relaxed); }
  static LogLevel level() { return level_.load(std::memory_order_relaxed); }
  static bool enabled(LogLevel l) { return l >= level(); }
  static bool parseLevel(std::string_view text, LogLevel& out);
  // "[component] message".
  static void write(LogLevel level, std::string_view component, std::string_view message);
  // "[component name] [request_id] message" (name and request_id left out when empty): a
  // filter's log line, assembled without building temporary strings.
  static void write(LogLevel level, std::string_view component, std::string_view name,
                    std::string_view request_id, std::string_view message);

  // Starts the writer thread (idempotent). Lines written before stay synchronous.
  static void startWriter();
  // Writes what is queued, stops the writer; later lines are synchronous again.
  static void stopWriter();
  // From a fatal-signal handler: writes the lines still queued (best effort: only if no thread
  // holds the queue; the queue stays locked afterwards, the process is about to die).
  static void writeQueuedForCrash();
  // Lines dropped because the queue was full, since start.
  static uint64_t dropped();

private:
  static std::atomic<LogLevel> level_;
};

// Formats into a per-thread buffer (no allocation once warm) and writes one line.
template <typename... Args>
void log(LogLevel level, std::string_view component, fmt::format_string<Args...> f,
         Args&&... args) {
  if (Logger::enabled(level)) {
    thread_local fmt::memory_buffer message;
    message.clear();
    fmt::format_to(fmt::appender(message), f, std::forward<Args>(args)...);
    Logger::write(level, component, std::string_view(message.data(), message.size()));
  }
}

} // namespace sluice

#define SLUICE_LOG(level, component, ...)                                                          \
  ::sluice::log(::sluice::LogLevel::level, component, __VA_ARGS__)
