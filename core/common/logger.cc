#include "core/common/logger.h"

#include <cstdio>
#include <ctime>

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

void Logger::write(LogLevel level, std::string_view component, std::string_view message) {
  static constexpr const char* kNames[] = {"trace", "debug", "info", "warn", "error", "off"};
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[32];
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line = fmt::format("{}.{:03d}Z {} [{}] {}\n", ts, static_cast<int>(tv.tv_usec / 1000),
                                 kNames[static_cast<int>(level)], component, message);
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

} // namespace sluice
