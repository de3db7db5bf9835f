#pragma once

// Process-wide logger: one line per message to stderr, "time level [component] message".
// Thread-safe (one write(2) per line). Used off the data path or for rare events only.

#include <atomic>
#include <string_view>

#include <fmt/format.h>

namespace sluice {

enum class LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Off = 5 };

class Logger {
public:
  static void setLevel(LogLevel level) { level_.store(level, std::memory_order_relaxed); }
  static LogLevel level() { return level_.load(std::memory_order_relaxed); }
  static bool enabled(LogLevel l) { return l >= level(); }
  static bool parseLevel(std::string_view text, LogLevel& out);
  static void write(LogLevel level, std::string_view component, std::string_view message);

private:
  static std::atomic<LogLevel> level_;
};

template <typename... Args>
void log(LogLevel level, std::string_view component, fmt::format_string<Args...> f,
         Args&&... args) {
  if (Logger::enabled(level)) {
    Logger::write(level, component, fmt::format(f, std::forward<Args>(args)...));
  }
}

} // namespace sluice

#define SLUICE_LOG(level, component, ...)                                                          \
  ::sluice::log(::sluice::LogLevel::level, component, __VA_ARGS__)
